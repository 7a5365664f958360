-- API token roles: admin (everything), operator (send, run flows, read and retry deliveries),
-- viewer (read only). Tokens made before roles existed could do everything: they stay admin.
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
    CHECK (role IN ('admin', 'operator', 'viewer'));
ALTER TABLE api_tokens ADD COLUMN last_used_at TIMESTAMPTZ;
