-- The agent's part of an answered offer, on its ring_attempts row: the talk
-- seconds and who hung up, from the ACD's `CallEnded` or `CallTransferred` that
-- ended it (the agent's first after the answer). The records writer sets them
-- when it writes that event (records/store.py); the reports and the agent's day
-- sum them over the rows they already read, rather than look up each answered
-- offer's end in call_events (bench/records_scale.py: a year's talk took 70-125
-- s of index lookups at 10 million calls). hung_up_by is 'transferred' for a
-- part ended by a transfer.
ALTER TABLE ring_attempts ADD COLUMN talk_seconds float8;
ALTER TABLE ring_attempts ADD COLUMN hung_up_by text
    CHECK (hung_up_by IN ('caller', 'agent', 'transferred'));

-- The offers answered before this migration, from their events (once).
UPDATE ring_attempts r
   SET (talk_seconds, hung_up_by) = (
        SELECT (e.data->>'talk_seconds')::float8,
               CASE WHEN e.kind = 'CallTransferred' THEN 'transferred'
                    ELSE e.data->>'hung_up_by' END
          FROM call_events e
         WHERE e.call_id = r.call_id AND e.kind IN ('CallEnded', 'CallTransferred')
           AND e.data->>'agent_id' = r.agent_id AND e.at >= r.ended_at
         ORDER BY e.at LIMIT 1)
 WHERE r.outcome = 'answered';
