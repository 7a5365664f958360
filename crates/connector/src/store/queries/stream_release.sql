DELETE FROM stream_holders WHERE connection_id = $1 AND owner = $2
