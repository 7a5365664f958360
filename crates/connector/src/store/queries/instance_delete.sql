-- $1 owner: it stopped cleanly (its leases were released).
DELETE FROM instances WHERE id = $1
