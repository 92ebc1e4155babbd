-- The agents' seconds paused and idle per UTC hour, for the hours that are over
-- (records/state_hours.py): a report of a year summed from 200 agents' hours
-- rather than from tens of millions of state changes (bench/records_scale.py),
-- and the board's "today" at start-up from the hours before the current one.
-- A cache of `agent_state_history`: made again from there whenever needed.
CREATE TABLE agent_state_hours (
    hour           timestamptz NOT NULL,  -- the start of the UTC hour
    agent_id       text NOT NULL,
    pause_seconds  float8 NOT NULL,       -- in not-ready
    idle_seconds   float8 NOT NULL,       -- in ready
    PRIMARY KEY (hour, agent_id)
);

-- How far the summary goes (every hour before `upto`), and when the changes
-- written since were last looked at: the time and the snapshot of the
-- transaction that looked (one row).
CREATE TABLE agent_state_hours_done (
    only_row          boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    upto              timestamptz NOT NULL,
    checked_at        timestamptz NOT NULL,
    checked_snapshot  pg_snapshot NOT NULL
);

-- When each change was written (its transaction's start): a change written after
-- the summary of its hour (a journal replayed out of order, a clock set back) is
-- among the changes written since shortly before the last look, and of those the
-- ones that snapshot did not see. The changes are appended in the order they are
-- written, so a BRIN index finds the recent ones for a few pages.
-- The changes written before this migration were summed by nobody yet: none is
-- late, so none is read as written since a look ('-infinity'; both defaults are
-- kept in the catalogue, no row is rewritten).
ALTER TABLE agent_state_history ADD COLUMN written_at timestamptz NOT NULL DEFAULT '-infinity';
ALTER TABLE agent_state_history ALTER COLUMN written_at SET DEFAULT now();
CREATE INDEX agent_state_history_written ON agent_state_history USING brin (written_at);
