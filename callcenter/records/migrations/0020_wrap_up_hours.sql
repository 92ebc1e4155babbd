-- The agents' wrap-ups in the hours' summary too (records/state_hours.py): the
-- seconds in wrap-up and how many, each in the hour it ended, as
-- `AgentStateChanged.seconds` says them. A year's report read them through one
-- call_events lookup per change out of wrap-up (10 s at 10 million calls,
-- bench/records_scale.py). The summary is made again with them by the next
-- refresh (it is a cache of agent_state_history).
ALTER TABLE agent_state_hours ADD COLUMN wrap_up_seconds float8 NOT NULL DEFAULT 0;
ALTER TABLE agent_state_hours ADD COLUMN wrap_ups integer NOT NULL DEFAULT 0;
TRUNCATE agent_state_hours;
DELETE FROM agent_state_hours_done;
