-- Customers (several numbers each, stored in E.164 so +86 138…, 0086 138… and
-- 138… find the same person) and an Asterisk-compatible queue_log.

CREATE TABLE customers (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address     text CHECK (length(address) <= 500),
    vip         boolean NOT NULL DEFAULT false,
    notes       text CHECK (length(notes) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customer_numbers (
    number       text PRIMARY KEY,          -- E.164, e.g. +8613812345678
    customer_id  bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE
);
CREATE INDEX customer_numbers_customer ON customer_numbers (customer_id);

ALTER TABLE calls ADD COLUMN caller_e164 text;          -- the caller's number, canonical
ALTER TABLE calls ADD COLUMN queue_position integer;      -- position when it joined the queue
CREATE INDEX calls_caller_e164 ON calls (caller_e164, arrived_at DESC);

-- The queue_log of Asterisk's app_queue, so existing queue-reporting tools
-- read our data as-is. Units are documented in docs/records.md.
CREATE TABLE queue_log (
    key        text PRIMARY KEY,             -- idempotency key of the event
    time       timestamptz NOT NULL,
    callid     text NOT NULL,
    queuename  text NOT NULL,
    agent      text NOT NULL,
    event      text NOT NULL,
    data1      text NOT NULL DEFAULT '',
    data2      text NOT NULL DEFAULT '',
    data3      text NOT NULL DEFAULT '',
    data4      text NOT NULL DEFAULT '',
    data5      text NOT NULL DEFAULT ''
);
CREATE INDEX queue_log_time ON queue_log (time);
