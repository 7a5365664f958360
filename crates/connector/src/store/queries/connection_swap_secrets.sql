-- Compare-and-swap, so a concurrent update is never overwritten by a stale re-seal. updated_at
-- moves too, so an update read before the swap conflicts instead of writing old-key secrets back.
UPDATE connections SET sealed_secrets = $2, updated_at = $4
WHERE id = $1 AND sealed_secrets = $3
