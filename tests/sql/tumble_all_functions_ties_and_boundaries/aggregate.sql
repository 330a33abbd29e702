-- Each event sees its key's earlier events (strictly earlier times: ties do not see each
-- other) inside its own 1-minute tumbling window.
SELECT card, count(*) AS n, count(amount) AS n_amount, sum(amount) AS total, avg(amount) AS mean,
       min(amount) AS low, max(amount) AS high, stddev(amount) AS sd
FROM events
GROUP BY card, TUMBLE(ts, INTERVAL '1' MINUTE)
