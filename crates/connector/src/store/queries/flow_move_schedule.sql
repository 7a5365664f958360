-- Moves a schedule on, only if no one else did since it was read as due at $2.
UPDATE flows SET next_fire_at = $3 WHERE id = $1 AND next_fire_at = $2
