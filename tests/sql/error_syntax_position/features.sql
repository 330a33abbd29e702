-- fail: SQL 3:18: Expected: ), found: AS
SELECT amount,
       ln(amount AS x
FROM events
