-- How many connections match the list's search ($1 as in connection_page; NULL: all).
SELECT COUNT(*) AS n FROM connections c
WHERE ($1 IS NULL OR lower(c.name) LIKE $1 ESCAPE '\' OR lower(c.description) LIKE $1 ESCAPE '\')
