DELETE FROM flows WHERE name = $1
