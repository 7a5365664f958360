-- A dedupe key older than the flow's window no longer holds back a new run.
UPDATE runs SET dedupe_key = NULL WHERE flow_id = $1 AND dedupe_key = $2 AND created_at < $3
