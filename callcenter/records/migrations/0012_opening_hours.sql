-- Opening hours and nobody there (docs/acd.md): a call turned away at arrival
-- because its queue was closed, or nobody of its group was there, is a calls
-- row of its own outcome ('closed', 'no-agent'): never queued nor offered, so
-- outside the service level and the offered count (records/stats.py).
--
-- A queue's dated exceptions to its opening hours, kept by the administration
-- API (PUT/DELETE /api/admin/queues/{name}/exceptions/{day}); they win over
-- the configuration file's ([queues.schedule] exceptions) for the same day.

ALTER TABLE calls DROP CONSTRAINT calls_outcome_check;
ALTER TABLE calls ADD CONSTRAINT calls_outcome_check CHECK (outcome IN
    ('answered', 'abandoned', 'short-abandon', 'overflow', 'rejected', 'transferred',
     'interrupted', 'pbx-timeout', 'elsewhere', 'refused', 'closed', 'no-agent'));

CREATE TABLE queue_hours_exceptions (
    queue       text NOT NULL,
    day         date NOT NULL,           -- in the queue's time zone
    hours       text[] NOT NULL,         -- "09:00-12:00" …; empty: closed all day
    note        text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, day)
);
