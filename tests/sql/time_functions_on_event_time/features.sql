-- The event time is Int64 epoch milliseconds; to_timestamp_millis makes it a timestamp.
SELECT date_part('hour', to_timestamp_millis(ts)) AS hour_of_day,
       date_part('dow', to_timestamp_millis(ts)) AS day_of_week,
       date_trunc('hour', to_timestamp_millis(ts)) AS hour_start,
       ts % 86400000 AS ms_of_day
FROM events
