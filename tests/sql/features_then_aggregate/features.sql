SELECT card, ln(amount) AS log_amount FROM events WHERE amount > 0
