-- Every connection's id, name and kind, by name: what pickers and lookups need, without the
-- sealed secrets and the rest of each row.
SELECT id, name, kind FROM connections ORDER BY name
