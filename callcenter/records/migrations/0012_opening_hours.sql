-- Opening hours and nobody there (docs/acd.md): a call turned away at arrival
-- because its queue was closed, or nobody of its group was there, is a calls
-- row of its own outcome ('closed', 'no-agent'): never queued nor offered, so
-- outside the service level and the offered count (records/stats.py).
--
-- A queue's opening hours and their dated exceptions are part of its
-- configuration (queues.config, as [[queues]] in the file): the
-- administration API's exceptions (PUT/DELETE
-- /api/admin/queues/{name}/exceptions/{day}) change that, so they need no
-- table of their own.

ALTER TABLE calls DROP CONSTRAINT calls_outcome_check;
ALTER TABLE calls ADD CONSTRAINT calls_outcome_check CHECK (outcome IN
    ('answered', 'abandoned', 'short-abandon', 'overflow', 'rejected', 'transferred',
     'interrupted', 'pbx-timeout', 'elsewhere', 'refused', 'closed', 'no-agent'));
