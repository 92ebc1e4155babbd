-- Staff other than agents (team leaders, supervisors, QA, managers): seeded
-- from [[desktop.supervisors]] on first start, then managed through the
-- administration API (callcenter/roles.py says what each role may do).

CREATE TABLE staff (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    role           text NOT NULL
                   CHECK (role IN ('team_leader', 'supervisor', 'qa', 'manager')),
    team           text,            -- an agent group the member leads or belongs to
    enabled        boolean NOT NULL DEFAULT true,
    password_hash  text,            -- argon2; NULL: the configuration file's password
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
