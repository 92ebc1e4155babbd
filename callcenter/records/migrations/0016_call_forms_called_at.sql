-- The agents' records by the time of the call they record: the reports read a
-- period's records (agents with any, satisfaction, categories this period and
-- the one before) by `called_at`, which without an index was a scan of every
-- record ever saved, three times per report (bench/records_scale.py: a
-- month at 10 million calls, 1.3 s of scans, 0.6 s with the index). Records
-- are saved by the desktop, one per answered call, not by the records writer.
CREATE INDEX call_forms_called_at ON call_forms (called_at);
