-- fail: SQL: output `id` would replace the key column, which always passes through unchanged; give the expression another name
SELECT upper(card) AS id FROM events
