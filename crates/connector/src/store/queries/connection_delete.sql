DELETE FROM connections WHERE id = $1
