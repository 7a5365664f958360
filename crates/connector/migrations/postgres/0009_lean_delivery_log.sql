-- Indexes no query uses: every write to the delivery log (each sync send is one) paid for them.
-- The claim walks deliveries_group_unfinished, and listings filter groups by
-- substr(group_key, 38), which (group_key, seq) cannot answer. PostgreSQL keeps
-- deliveries_created_at: with the filters bound, its planner can use it for time ranges.
DROP INDEX IF EXISTS deliveries_due;
DROP INDEX IF EXISTS deliveries_group_seq;
