-- fail: SQL: Error during planning: Cannot create filter with non-boolean predicate 'events.merchant' returning Utf8
SELECT amount FROM events WHERE merchant
