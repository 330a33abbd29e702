-- fail: SQL 2:1: Expected: an SQL statement, found: Did
Did you mean 'ltrim'?
SELECT logarithm(amount) AS l FROM events
