SELECT tat_us FROM rate_limits WHERE key = $1
