-- GCRA, one atomic statement: the request's slot is max(TAT, now); it is granted if the slot is
-- not after the caller's deadline, and the TAT moves one emission interval past the slot.
-- ?1 key, ?2 now (us), ?3 interval (us), ?4 latest acceptable slot (us).
-- Returns the new TAT when granted, no row when not (read the TAT with rate_tat.sql).
INSERT INTO rate_limits (key, tat_us) VALUES (?1, ?2 + ?3)
ON CONFLICT (key) DO UPDATE SET tat_us = MAX(rate_limits.tat_us, ?2) + ?3
    WHERE MAX(rate_limits.tat_us, ?2) <= ?4
RETURNING tat_us
