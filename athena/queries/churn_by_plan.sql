-- Churn by plan: for each churn label, the plan the user was on at the label's cutoff (00:00
-- UTC of renewal_date, as in the training set), read from the SCD type 2 history as the version
-- valid at that instant. Labels without a version then are grouped under 'unknown'.
WITH labelled AS (
    SELECT l.user_id, l.churned, h.plan
    FROM {database}.churn_labels AS l
    LEFT JOIN {database}.subscription_history AS h
        ON h.user_id = l.user_id
        AND h.valid_from <= CAST(l.renewal_date AS TIMESTAMP)
        AND (h.valid_to IS NULL OR h.valid_to > CAST(l.renewal_date AS TIMESTAMP))
)
SELECT
    coalesce(plan, 'unknown') AS plan,
    count(*) AS labels,
    sum(CASE WHEN churned THEN 1 ELSE 0 END) AS churned,
    CAST(sum(CASE WHEN churned THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS churn_rate
FROM labelled
GROUP BY coalesce(plan, 'unknown')
ORDER BY 1
