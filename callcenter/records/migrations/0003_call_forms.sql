-- The service centre's standard call form (shared/SOP.md), complaints with
-- their class and deadline, and promised follow-ups (call-backs, replies).

CREATE TABLE call_forms (
    id                     text PRIMARY KEY,      -- chosen by the desktop: saving twice is harmless
    call_id                text,
    agent_id               text NOT NULL,
    customer_id            bigint REFERENCES customers (id),
    caller_name            text CHECK (length(caller_name) <= 200),
    address                text CHECK (length(address) <= 500),
    called_at              timestamptz NOT NULL,
    service_requested      text CHECK (length(service_requested) <= 2000),
    appointment_at         timestamptz,
    contact                text CHECK (length(contact) <= 200),
    special_requests       text CHECK (length(special_requests) <= 2000),
    category               text NOT NULL CHECK (category IN
                             ('inquiry', 'complaint', 'suggestion', 'repair', 'other')),
    complaint_matter       text CHECK (length(complaint_matter) <= 4000),
    complaint_occurred_at  timestamptz,
    satisfaction_asked     boolean NOT NULL DEFAULT false,
    satisfaction_score     integer CHECK (satisfaction_score BETWEEN 1 AND 5),
    read_back_done         boolean NOT NULL DEFAULT false,
    notes                  text CHECK (length(notes) <= 4000),
    saved_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_forms_call ON call_forms (call_id);
CREATE INDEX call_forms_customer ON call_forms (customer_id, called_at DESC);

CREATE TABLE complaints (
    id           bigserial PRIMARY KEY,
    form_id      text NOT NULL UNIQUE REFERENCES call_forms (id),
    customer_id  bigint REFERENCES customers (id),
    class        text NOT NULL DEFAULT 'ordinary'
                   CHECK (class IN ('ordinary', 'serious', 'invalid', 'valid', 'other-unit')),
    matter       text NOT NULL,
    occurred_at  timestamptz,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    deadline_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz
);
CREATE INDEX complaints_open ON complaints (customer_id) WHERE status = 'open';

CREATE TABLE follow_ups (
    id           bigserial PRIMARY KEY,
    form_id      text REFERENCES call_forms (id),
    customer_id  bigint REFERENCES customers (id),
    kind         text NOT NULL CHECK (kind IN ('call-back', 'reply')),
    due_at       timestamptz NOT NULL,
    done_at      timestamptz,
    notes        text,
    UNIQUE (form_id, kind)
);
CREATE INDEX follow_ups_pending ON follow_ups (customer_id, due_at) WHERE done_at IS NULL;
