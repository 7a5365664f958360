-- Key rotation: the hook's secrets re-sealed, only if they still hold what was re-sealed.
UPDATE flows SET sealed_secrets = $3 WHERE id = $1 AND sealed_secrets = $2
