-- Agents' phone (SIP) passwords set through the administration API, kept as
-- digest H(A1) values, never in the clear:
-- {"realm", "user", "MD5": H(user:realm:password), "SHA-256": …}.

ALTER TABLE agents ADD COLUMN sip_digest jsonb;
