-- Purchase funnel over browser sessions (the session_id cookie, signed-in or not):
-- page_view -> add_to_cart -> purchase, in that order. A session reaches a step when it has
-- the step's event at or after the moment it reached the previous step (a cart added before
-- any page view does not count). Duplicate deliveries collapse in the DISTINCT.
WITH funnel_events AS (
    SELECT DISTINCT session_id, event_type, event_time
    FROM {database}.clickstream_raw
    WHERE event_type IN ('page_view', 'add_to_cart', 'purchase')
),
viewed AS (
    SELECT session_id, min(event_time) AS reached_at
    FROM funnel_events
    WHERE event_type = 'page_view'
    GROUP BY session_id
),
carted AS (
    SELECT e.session_id, min(e.event_time) AS reached_at
    FROM funnel_events AS e
    JOIN viewed AS v ON e.session_id = v.session_id AND e.event_time >= v.reached_at
    WHERE e.event_type = 'add_to_cart'
    GROUP BY e.session_id
),
purchased AS (
    SELECT e.session_id, min(e.event_time) AS reached_at
    FROM funnel_events AS e
    JOIN carted AS c ON e.session_id = c.session_id AND e.event_time >= c.reached_at
    WHERE e.event_type = 'purchase'
    GROUP BY e.session_id
),
steps AS (
    SELECT
        (SELECT count(*) FROM viewed) AS page_view_sessions,
        (SELECT count(*) FROM carted) AS add_to_cart_sessions,
        (SELECT count(*) FROM purchased) AS purchase_sessions
)
SELECT
    page_view_sessions,
    add_to_cart_sessions,
    purchase_sessions,
    CAST(add_to_cart_sessions AS DOUBLE) / NULLIF(page_view_sessions, 0) AS view_to_cart_rate,
    CAST(purchase_sessions AS DOUBLE) / NULLIF(add_to_cart_sessions, 0) AS cart_to_purchase_rate,
    CAST(purchase_sessions AS DOUBLE) / NULLIF(page_view_sessions, 0) AS view_to_purchase_rate
FROM steps
