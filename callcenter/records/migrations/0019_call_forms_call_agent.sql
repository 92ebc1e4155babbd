-- Whether the agent who answered a call has saved their record of it
-- (`forms.RECORD_SAVED`: "records missing" on the board, in "My day" and the
-- reports) is a lookup by call and agent for every answered offer of the period:
-- four million a year at 10 million calls (bench/records_scale.py). With the
-- agent in the index the lookup reads the index alone (half the time: no heap
-- page per offer). It serves the lookups by call alone as the index it replaces.
CREATE INDEX call_forms_call_agent ON call_forms (call_id, agent_id);
DROP INDEX call_forms_call;
