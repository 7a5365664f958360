INSERT INTO api_tokens (id, token_hash, label, created_at) VALUES ($1, $2, $3, $4)
