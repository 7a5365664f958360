-- GCRA, one atomic statement (on PostgreSQL the row lock serializes instances): the request's
-- slot is max(TAT, now); it is granted if the slot is not after the caller's deadline, and the
-- TAT moves one emission interval past the slot.
-- $1 key, $2 now (us), $3 interval (us), $4 latest acceptable slot (us).
-- Returns the new TAT when granted, no row when not (read the TAT with rate_tat.sql).
-- (CASE rather than GREATEST/MAX: SQLite has no GREATEST, PostgreSQL no two-argument MAX.)
INSERT INTO rate_limits AS r (key, tat_us) VALUES ($1, $2 + $3)
ON CONFLICT (key) DO UPDATE SET tat_us = CASE WHEN r.tat_us > $2 THEN r.tat_us ELSE $2 END + $3
    WHERE (CASE WHEN r.tat_us > $2 THEN r.tat_us ELSE $2 END) <= $4
RETURNING tat_us
