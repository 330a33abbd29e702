-- fail: SQL 2:1: GROUP BY needs one key column and one window, e.g. GROUP BY card_id, HOP(ts, INTERVAL '1 minute', INTERVAL '1 hour')
SELECT card, sum(amount) AS s FROM events GROUP BY card
