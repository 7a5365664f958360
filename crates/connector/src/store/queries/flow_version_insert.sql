INSERT INTO flow_versions (flow_id, version, document, sealed_secrets, created_at)
VALUES ($1, $2, $3, $4, $5)
