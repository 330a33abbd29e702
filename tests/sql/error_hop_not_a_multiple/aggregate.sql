-- fail: SQL 4:16: the window size (3600000 ms) must be a whole multiple of the slide (420000 ms)
SELECT card, count(*) AS n
FROM events
GROUP BY card, HOP(ts, INTERVAL '7 minutes', INTERVAL '1 hour')
