SELECT id, token_hash, label, role, created_at, last_used_at FROM api_tokens WHERE token_hash = $1
