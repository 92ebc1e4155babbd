-- Desktop passwords (argon2 hashes) and the administration's audit log.

ALTER TABLE agents ADD COLUMN password_hash text;

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,        -- the supervisor's id
    action   text NOT NULL,        -- agent.add, agent.edit, agent.password, queue.add, …
    target   text NOT NULL,
    details  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
