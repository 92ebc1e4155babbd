-- A crash of the call process leaves its calls in progress and its agent legs
-- still ringing open (no end, no outcome). The records writer closes them
-- when it meets the first record of the next run of the call process (all of
-- the crashed run's records are written by then), with the outcome
-- 'interrupted': the service stopped. `record_boots` holds the runs the
-- writer has met, so that it closes them once; the runs already in
-- call_events are met (their calls may still be open and their records
-- still in the journal).

ALTER TABLE calls DROP CONSTRAINT calls_outcome_check;
ALTER TABLE calls ADD CONSTRAINT calls_outcome_check CHECK (outcome IN
    ('answered', 'abandoned', 'short-abandon', 'overflow', 'rejected', 'transferred',
     'interrupted'));

ALTER TABLE ring_attempts DROP CONSTRAINT ring_attempts_outcome_check;
ALTER TABLE ring_attempts ADD CONSTRAINT ring_attempts_outcome_check CHECK (outcome IN
    ('answered', 'cancelled', 'missed', 'busy', 'declined', 'unreachable',
     'answered-elsewhere', 'error', 'interrupted'));

CREATE TABLE record_boots (
    boot        text PRIMARY KEY,      -- the first part of its records' keys
    met_at      timestamptz NOT NULL,  -- the time of its first record the writer met
    calls       integer NOT NULL DEFAULT 0,  -- earlier runs' calls it closed
    ring_attempts integer NOT NULL DEFAULT 0
);

INSERT INTO record_boots (boot, met_at)
SELECT regexp_replace(key, ':[^:]*$', ''), min(at) FROM call_events GROUP BY 1;
