-- DingTalk throttled this key anyway: nothing goes out before ?2 (us).
INSERT INTO rate_limits (key, tat_us) VALUES (?1, ?2)
ON CONFLICT (key) DO UPDATE SET tat_us = MAX(rate_limits.tat_us, ?2)
