-- Hopping: the window is the 3 one-minute panes ending with the event's own pane.
SELECT card, count(*) AS n_3m, avg(amount) AS avg_3m
FROM events
GROUP BY card, HOP(ts, INTERVAL '1 minute', INTERVAL '3 minutes')
