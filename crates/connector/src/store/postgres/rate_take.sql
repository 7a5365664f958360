-- GCRA, one atomic statement (the row lock serializes instances): the request's slot is
-- max(TAT, now); it is granted if the slot is not after the caller's deadline, and the TAT moves
-- one emission interval past the slot.
-- $1 key, $2 now (us), $3 interval (us), $4 latest acceptable slot (us).
-- Returns the new TAT when granted, no row when not (read the TAT with rate_tat.sql).
INSERT INTO rate_limits AS r (key, tat_us) VALUES ($1, $2 + $3)
ON CONFLICT (key) DO UPDATE SET tat_us = GREATEST(r.tat_us, $2) + $3
    WHERE GREATEST(r.tat_us, $2) <= $4
RETURNING tat_us
