DELETE FROM api_tokens WHERE id = $1
