-- fail: SQL 2:65: windows are on the event time: the first argument must be `ts`, got `created`
SELECT card, sum(amount) AS s FROM events GROUP BY card, TUMBLE(created, INTERVAL '1 hour')
