INSERT INTO api_tokens (id, token_hash, label, role, created_at) VALUES ($1, $2, $3, $4, $5)
