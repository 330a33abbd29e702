-- Selecting the key and time under their own names is allowed; they always come first.
SELECT amount, ts, id, card FROM events
