SELECT id, token_hash, label, created_at FROM api_tokens WHERE token_hash = $1
