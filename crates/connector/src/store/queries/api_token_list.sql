SELECT id, token_hash, label, role, created_at, last_used_at FROM api_tokens ORDER BY created_at, id
