-- Aggregates read the outputs of features.sql.
SELECT card, avg(log_amount) AS avg_log_1d, max(log_amount) AS max_log_1d
FROM events
GROUP BY card, HOP(ts, INTERVAL '1 hour', INTERVAL '1 day')
