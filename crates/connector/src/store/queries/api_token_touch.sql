-- Last use, kept to the minute: written at most once a minute per token.
UPDATE api_tokens SET last_used_at = $2 WHERE id = $1
