SELECT COUNT(*) AS n FROM api_tokens
