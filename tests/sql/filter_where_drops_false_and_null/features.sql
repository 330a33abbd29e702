-- Rows where the condition is false or null (e4: null amount) are dropped.
SELECT amount FROM events WHERE amount > 1 AND card = 'a'
