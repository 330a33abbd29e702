-- fail: SQL: feature SQL must be `SELECT <expressions> FROM events [WHERE <condition>]`, evaluated row by row; this query uses an aggregate (GROUP BY or an aggregate function). Windowed aggregates go in [features.aggregates.NAME]
SELECT card, avg(amount) AS a FROM events GROUP BY card
