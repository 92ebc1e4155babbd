-- Calls that ended unanswered through no choice of the caller's (`CallFailed`,
-- docs/acd.md): the PBX's own ring timer cancelled the caller's INVITE
-- ('pbx-timeout'), another phone of the PBX's ring group answered it
-- ('elsewhere'), or the PBX refused every offer of the call ('refused'). The
-- first two are hung up by the PBX. An agent leg the PBX refused (401/403/407,
-- a 5xx but 502-504) has the outcome 'refused'.

ALTER TABLE calls DROP CONSTRAINT calls_outcome_check;
ALTER TABLE calls ADD CONSTRAINT calls_outcome_check CHECK (outcome IN
    ('answered', 'abandoned', 'short-abandon', 'overflow', 'rejected', 'transferred',
     'interrupted', 'pbx-timeout', 'elsewhere', 'refused'));

ALTER TABLE calls DROP CONSTRAINT calls_hung_up_by_check;
ALTER TABLE calls ADD CONSTRAINT calls_hung_up_by_check CHECK (hung_up_by IN
    ('caller', 'agent', 'pbx'));

ALTER TABLE ring_attempts DROP CONSTRAINT ring_attempts_outcome_check;
ALTER TABLE ring_attempts ADD CONSTRAINT ring_attempts_outcome_check CHECK (outcome IN
    ('answered', 'cancelled', 'missed', 'busy', 'declined', 'unreachable',
     'answered-elsewhere', 'error', 'interrupted', 'refused'));
