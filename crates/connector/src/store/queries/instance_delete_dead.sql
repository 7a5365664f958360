-- $1 cutoff: forget owners whose last heartbeat is older (their leases were taken back).
DELETE FROM instances WHERE heartbeat_at < $1
