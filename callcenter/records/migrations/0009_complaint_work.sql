-- Complaints worked to their deadlines (issue 18, docs/complaints.md): the states of
-- casework/complaints.py, who owns a complaint, its investigation, corrective action and
-- call-back, and complaint_events, the history of every change (who, what, when).

ALTER TABLE complaints DROP CONSTRAINT complaints_status_check;
DROP INDEX complaints_open;
UPDATE complaints SET status = 'received' WHERE status = 'open';
ALTER TABLE complaints
    ALTER COLUMN status SET DEFAULT 'received',
    ADD CONSTRAINT complaints_status_check CHECK (status IN
      ('received', 'classified', 'investigated', 'correcting', 'called-back', 'closed')),
    -- Intake from staff who are not on a call (004 §3.1): no form.
    ALTER COLUMN form_id DROP NOT NULL,
    ADD COLUMN received_at        timestamptz,
    ADD COLUMN reported_by        text,          -- the staff member who took it
    ADD COLUMN complainant        text CHECK (length(complainant) <= 200),
    ADD COLUMN contact            text CHECK (length(contact) <= 200),
    ADD COLUMN owner              text CHECK (length(owner) <= 64),
    ADD COLUMN investigated_by    text CHECK (length(investigated_by) <= 64),
    ADD COLUMN findings           text CHECK (length(findings) <= 4000),
    ADD COLUMN on_site            boolean NOT NULL DEFAULT false,
    ADD COLUMN action             text CHECK (length(action) <= 4000),
    ADD COLUMN action_owner       text CHECK (length(action_owner) <= 64),
    ADD COLUMN action_due_at      timestamptz,
    ADD COLUMN action_checked_at  timestamptz,
    ADD COLUMN action_effective   boolean,
    ADD COLUMN contacted_at       timestamptz,   -- the first call-back that reached them
    ADD COLUMN corrected_at       timestamptz,   -- the first corrective action
    ADD COLUMN called_back_at     timestamptz,   -- the last call-back that reached them
    ADD COLUMN satisfied          boolean,
    ADD COLUMN customer_words     text CHECK (length(customer_words) <= 4000),
    -- When the class's milestone was met (casework.complaints.Complaint.met_at), kept
    -- with each change so "overdue" is one indexable condition.
    ADD COLUMN met_at             timestamptz,
    ADD COLUMN updated_at         timestamptz NOT NULL DEFAULT now();

-- A complaint from a form was received when the call was.
UPDATE complaints c SET received_at = coalesce(
    (SELECT f.called_at FROM call_forms f WHERE f.id = c.form_id), c.created_at);
UPDATE complaints SET met_at = closed_at WHERE status = 'closed' AND class = 'ordinary';
ALTER TABLE complaints ALTER COLUMN received_at SET NOT NULL;

CREATE INDEX complaints_open ON complaints (customer_id) WHERE status <> 'closed';
CREATE INDEX complaints_due ON complaints (deadline_at) WHERE status <> 'closed';
CREATE INDEX complaints_received ON complaints (received_at);

CREATE TABLE complaint_events (
    id            bigserial PRIMARY KEY,
    complaint_id  bigint NOT NULL REFERENCES complaints (id),
    at            timestamptz NOT NULL,
    actor         text NOT NULL,
    action        text NOT NULL,         -- casework.complaints.InputKind, or 'receive'
    from_status   text,
    to_status     text NOT NULL,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX complaint_events_complaint ON complaint_events (complaint_id, id);

-- The history of the complaints already there starts with their receipt.
INSERT INTO complaint_events (complaint_id, at, actor, action, to_status, details)
SELECT c.id, c.received_at, coalesce(f.agent_id, 'unknown'), 'receive', c.status,
       jsonb_build_object('class', c.class)
FROM complaints c LEFT JOIN call_forms f ON f.id = c.form_id;

-- Follow-ups (a complaint's call-back, a promised reply) have an owner, belong to their
-- complaint (one taken by intake has no form), and say who closed them.
ALTER TABLE follow_ups
    ADD COLUMN complaint_id  bigint REFERENCES complaints (id),
    ADD COLUMN owner         text CHECK (length(owner) <= 64),
    ADD COLUMN done_by       text;
UPDATE follow_ups u SET complaint_id = c.id
FROM complaints c WHERE u.kind = 'call-back' AND c.form_id = u.form_id;
CREATE UNIQUE INDEX follow_ups_complaint ON follow_ups (complaint_id, kind);
CREATE INDEX follow_ups_due ON follow_ups (due_at) WHERE done_at IS NULL;

-- Suggestions (000 §4.3, casework/suggestions.py): recorded from a form of the category
-- `suggestion` or by any staff member, assessed, forwarded, answered, adopted or not.
CREATE TABLE suggestions (
    id            bigserial PRIMARY KEY,
    form_id       text UNIQUE REFERENCES call_forms (id),
    customer_id   bigint REFERENCES customers (id),
    text          text NOT NULL CHECK (length(text) <= 4000),
    suggester     text CHECK (length(suggester) <= 200),
    contact       text CHECK (length(contact) <= 200),
    reported_by   text NOT NULL,
    received_at   timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'recorded'
                    CHECK (status IN ('recorded', 'assessed', 'forwarded', 'answered')),
    feasible      boolean,
    valuable      boolean,
    forwarded_to  text CHECK (length(forwarded_to) <= 200),
    adopted       boolean,
    answer        text CHECK (length(answer) <= 4000),
    answered_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX suggestions_received ON suggestions (received_at);

-- The suggestions already recorded on forms.
INSERT INTO suggestions (form_id, customer_id, text, suggester, contact, reported_by, received_at)
SELECT id, customer_id, left(coalesce(nullif(service_requested, ''), nullif(notes, ''), '-'), 4000),
       caller_name, contact, agent_id, called_at
FROM call_forms WHERE category = 'suggestion';

-- The history of suggestions and promised replies: who, what, when.
CREATE TABLE case_events (
    id           bigserial PRIMARY KEY,
    case_kind    text NOT NULL CHECK (case_kind IN ('suggestion', 'follow-up')),
    case_id      bigint NOT NULL,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX case_events_case ON case_events (case_kind, case_id, id);
