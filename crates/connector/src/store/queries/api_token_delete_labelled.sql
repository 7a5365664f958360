-- Revoke the tokens with this label but one (the sandbox keeps one token).
DELETE FROM api_tokens WHERE label = $1 AND token_hash <> $2
