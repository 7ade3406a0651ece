-- Consumer networks: the client networks (canonical CIDR blocks, space-separated, at most 32)
-- every token of the consumer is limited to. Empty: not limited.
ALTER TABLE scopekey_consumers ADD COLUMN networks TEXT NOT NULL DEFAULT ''
