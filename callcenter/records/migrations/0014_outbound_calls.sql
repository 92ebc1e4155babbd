-- Outbound calls (click-to-call, docs/callbacks.md): one row per call placed
-- for an agent, from its events (`OutboundStarted`, `OutboundAnswered`,
-- `OutboundEnded`; every event is in `call_events` too). `item_id` names the
-- worklist item the call worked (`callback_items.id`), if any; the agent's
-- leg is `ring_attempts`-like only in its id: its SIP Call-ID is
-- "<leg_id>@<service host>", the customer's "<call_id>@<service host>".

CREATE TABLE outbound_calls (
    call_id       text PRIMARY KEY,
    agent_id      text NOT NULL,
    number        text NOT NULL,            -- as dialled
    item_id       bigint,
    leg_id        text,                     -- the agent leg's id
    started_at    timestamptz NOT NULL,     -- the agent asked: their phone rings
    answered_at   timestamptz,              -- the customer answered: joined
    ended_at      timestamptz,
    ring_seconds  double precision CHECK (ring_seconds >= 0),  -- the customer's phone
    talk_seconds  double precision CHECK (talk_seconds >= 0),
    outcome       text CHECK (outcome IN ('reached', 'no-answer', 'busy', 'declined', 'failed',
                                          'agent-no-answer', 'interrupted')),
    hung_up_by    text CHECK (hung_up_by IN ('agent', 'customer')),
    status        integer,                  -- the SIP status that ended an unanswered call
    reason        text,                     -- why, in words
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbound_calls_started_at ON outbound_calls (started_at);
CREATE INDEX outbound_calls_agent ON outbound_calls (agent_id, started_at);
CREATE INDEX outbound_calls_item ON outbound_calls (item_id) WHERE item_id IS NOT NULL;
CREATE INDEX outbound_calls_number ON outbound_calls (number, started_at DESC);
