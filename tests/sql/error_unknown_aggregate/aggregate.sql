-- fail: SQL 2:14: unknown aggregate `median`; supported: count, sum, avg, mean, min, max, stddev, stddev_samp
SELECT card, median(amount) AS m FROM events GROUP BY card, TUMBLE(ts, INTERVAL '1 hour')
