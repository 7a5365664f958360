-- DingTalk throttled this key anyway: nothing goes out before $2 (us).
-- (CASE rather than GREATEST/MAX: SQLite has no GREATEST, PostgreSQL no two-argument MAX.)
INSERT INTO rate_limits AS r (key, tat_us) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET tat_us = CASE WHEN r.tat_us > $2 THEN r.tat_us ELSE $2 END
