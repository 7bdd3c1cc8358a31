-- V1: the subscriptions table replicated to the `cdc` stream by AWS DMS (full load + ongoing CDC).
-- Versioned migration (Flyway naming: V<version>__<description>.sql); never edit once applied,
-- add V2__... instead. The column contract lives in platform_core/schemas/cdc.py (SUBSCRIPTION_ROW).

CREATE TABLE IF NOT EXISTS public.subscriptions (
    -- A string everywhere in the platform, so that every source joins on it.
    user_id              text          NOT NULL,
    is_active_subscribed boolean       NOT NULL DEFAULT false,
    renewal_date         date,
    plan                 text,
    price                numeric(12, 2),
    CONSTRAINT subscriptions_pkey PRIMARY KEY (user_id),
    CONSTRAINT subscriptions_user_id_not_blank CHECK (length(btrim(user_id)) > 0),
    CONSTRAINT subscriptions_price_not_negative CHECK (price IS NULL OR price >= 0),
    -- An active subscription always knows when it renews, on which plan and at what price.
    CONSTRAINT subscriptions_active_is_complete CHECK (
        NOT is_active_subscribed OR (renewal_date IS NOT NULL AND plan IS NOT NULL AND price IS NOT NULL)
    )
);

-- Log the whole old row on UPDATE and DELETE, so that DMS's before image (BeforeImageSettings with
-- ColumnFilter "all") and a delete's `data` carry every column, not just the primary key.
ALTER TABLE public.subscriptions REPLICA IDENTITY FULL;

COMMENT ON TABLE public.subscriptions IS 'One row per user; replicated by DMS to the cdc Kinesis stream';
COMMENT ON COLUMN public.subscriptions.is_active_subscribed IS
    'NOT NULL: a row image without it is a primary-key-only DMS before image';
