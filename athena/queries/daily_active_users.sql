-- Daily active users: distinct signed-in users per UTC day of event_time, with their events.
-- The day comes from the Hive partition columns (the UTC date of event_time), so a filter on
-- year/month/day added by the caller prunes partitions instead of scanning the lake.
-- At-least-once delivery does not inflate anything: users and event_ids are counted distinct.
SELECT
    year || '-' || month || '-' || day AS activity_date,
    count(DISTINCT user_id) AS active_users,
    count(DISTINCT event_id) AS events
FROM {database}.clickstream_raw
WHERE user_id IS NOT NULL
GROUP BY year, month, day
ORDER BY activity_date
