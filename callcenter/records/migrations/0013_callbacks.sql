-- What the centre owes its callers (docs/callbacks.md, casework/callbacks.py): one item per
-- abandoned caller and local day, per complaint call-back and per promised reply, made by the
-- floor process's refresh; the attempts to call each; assignments and attempts in case_events.

CREATE TABLE callback_items (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('abandoned', 'call-back', 'reply')),
    number           text CHECK (length(number) <= 200),  -- whom to call (NULL: not known)
    local_day        date,                                -- abandoned: the abandon's local day
    queue            text,                                -- the abandoned call's queue
    call_id          text,                                -- abandoned: the day's first abandon
    follow_up_id     bigint UNIQUE REFERENCES follow_ups (id),
    owed_since       timestamptz NOT NULL,                -- the first abandon, the due time
    last_abandon_at  timestamptz,
    abandons         integer NOT NULL DEFAULT 1 CHECK (abandons >= 1),
    assigned_to      text CHECK (length(assigned_to) <= 64),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'expired')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    next_attempt_at  timestamptz,
    expires_at       timestamptz,
    closed_at        timestamptz,
    closed_as        text,
    made_at          timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CHECK ((kind = 'abandoned') = (follow_up_id IS NULL)),
    CHECK (kind <> 'abandoned' OR (number IS NOT NULL AND local_day IS NOT NULL))
);
CREATE UNIQUE INDEX callback_items_caller_day ON callback_items (number, local_day)
    WHERE kind = 'abandoned';
CREATE INDEX callback_items_open ON callback_items (owed_since) WHERE status = 'open';
CREATE INDEX callback_items_assigned ON callback_items (assigned_to) WHERE status = 'open';

CREATE TABLE callback_attempts (
    id         bigserial PRIMARY KEY,
    item_id    bigint NOT NULL REFERENCES callback_items (id),
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN
                 ('reached', 'no-answer', 'busy', 'wrong-number', 'declined', 'failed')),
    notes      text CHECK (length(notes) <= 2000),
    call_id    text CHECK (length(call_id) <= 200)  -- the outbound call's records
);
CREATE INDEX callback_attempts_item ON callback_attempts (item_id, id);
CREATE INDEX callback_attempts_at ON callback_attempts (at);

ALTER TABLE case_events DROP CONSTRAINT case_events_case_kind_check;
ALTER TABLE case_events ADD CONSTRAINT case_events_case_kind_check CHECK (case_kind IN
    ('suggestion', 'follow-up', 'callback'));
