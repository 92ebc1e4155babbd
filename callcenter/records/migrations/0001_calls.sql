-- Calls, ring attempts, call events and agent state history: the service
-- centre's evidence. One row per call, one per ring attempt (offer to an
-- agent), one per event in order, one per agent state change. Every row has
-- a natural or idempotency key, so replaying the journal inserts nothing twice.

CREATE TABLE agents (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    number      text NOT NULL,            -- said in the greeting
    extension   text NOT NULL UNIQUE,
    groups      jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queues (
    name        text PRIMARY KEY,
    config      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE calls (
    call_id          text PRIMARY KEY,     -- the caller's SIP Call-ID
    queue            text NOT NULL,
    hotline          text,
    caller           text NOT NULL,
    caller_name      text,
    arrived_at       timestamptz NOT NULL, -- t = 0: the caller's first 180
    answered_at      timestamptz,
    ended_at         timestamptz,
    rings_to_answer  integer CHECK (rings_to_answer >= 1),  -- floor(answer time / cycle) + 1
    rings            integer CHECK (rings >= 1),            -- rings heard: at the answer or abandon
    abandoned_where  text CHECK (abandoned_where IN ('queued', 'ringing')),
    wait_seconds     double precision CHECK (wait_seconds >= 0),
    talk_seconds     double precision CHECK (talk_seconds >= 0),
    agent_id         text,
    outcome          text CHECK (outcome IN
                       ('answered', 'abandoned', 'short-abandon', 'overflow', 'rejected', 'transferred')),
    hung_up_by       text CHECK (hung_up_by IN ('caller', 'agent')),
    within_target    boolean,
    breached         boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_arrived_at ON calls (arrived_at);
CREATE INDEX calls_caller ON calls (caller, arrived_at DESC);
CREATE INDEX calls_agent ON calls (agent_id, arrived_at);

CREATE TABLE ring_attempts (
    leg_id      text PRIMARY KEY,          -- its SIP Call-ID is "<leg_id>@<service host>"
    call_id     text NOT NULL,
    agent_id    text NOT NULL,
    offered_at  timestamptz NOT NULL,
    rang_at     timestamptz,              -- the phone's 180: t = 0 of the leg's ring clock
    ended_at    timestamptz,
    outcome     text CHECK (outcome IN ('answered', 'cancelled', 'missed', 'busy', 'declined',
                                        'unreachable', 'answered-elsewhere', 'error')),
    leg_rings   integer CHECK (leg_rings >= 0)
);
CREATE INDEX ring_attempts_call ON ring_attempts (call_id);
CREATE INDEX ring_attempts_agent ON ring_attempts (agent_id, offered_at);

CREATE TABLE call_events (
    key      text PRIMARY KEY,                -- idempotency key: "<boot>:<seq>"
    call_id  text,
    at       timestamptz NOT NULL,
    kind     text NOT NULL,
    data     jsonb NOT NULL
);
CREATE INDEX call_events_call ON call_events (call_id, at);

CREATE TABLE agent_state_history (
    key       text PRIMARY KEY,
    agent_id  text NOT NULL,
    at        timestamptz NOT NULL,
    state     text NOT NULL,
    previous  text NOT NULL,
    reason    text
);
CREATE INDEX agent_state_history_agent ON agent_state_history (agent_id, at);
