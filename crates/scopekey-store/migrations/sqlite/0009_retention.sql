-- Bounded growth (Store::sweep). Swept single-token revocations are counted, and the highest
-- number swept is kept, so that a replica's consistency check can tell a sweep from a lost row.
INSERT INTO scopekey_counters (name, value) VALUES ('revocations_swept', 0);
INSERT INTO scopekey_counters (name, value) VALUES ('revocations_swept_through', 0);
-- The sweeps find expired rows through these, in bounded batches, and the last serves
-- `tokens --unused-since`.
CREATE INDEX scopekey_revocations_sweep ON scopekey_revocations (kind, instant);
CREATE INDEX scopekey_tokens_expires_at ON scopekey_tokens (expires_at);
CREATE INDEX scopekey_refresh_families_expires_at ON scopekey_refresh_families (expires_at);
CREATE INDEX scopekey_audit_time ON scopekey_audit (time, id);
CREATE INDEX scopekey_tokens_unused ON scopekey_tokens ((COALESCE(last_used, issued_at)));
