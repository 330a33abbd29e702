-- Arithmetic, ln (ln(0) = -inf becomes null), CASE, string functions and casts.
SELECT amount * 1.1 + 1 AS scaled,
       ln(amount) AS log_amount,
       CASE WHEN amount >= 100 THEN 'high' WHEN amount >= 10 THEN 'mid' ELSE 'low' END AS band,
       lower(merchant) AS merchant_lc,
       length(merchant) AS merchant_len,
       CAST(amount AS INT) AS amount_int,
       online AND amount > 100 AS big_online
FROM events
