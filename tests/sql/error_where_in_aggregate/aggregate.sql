-- fail: SQL 2:49: WHERE is not allowed in a windowed aggregate: filter events in features.sql, which runs first
SELECT card, sum(amount) AS s FROM events WHERE amount > 10 GROUP BY card, TUMBLE(ts, INTERVAL '1 hour')
