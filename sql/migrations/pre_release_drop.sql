-- What a database built by the pre-release migrations has and the schema no longer has. Adopting
-- such a database (collector/store/migrating.py) runs this first, then the schema's replaceable
-- statements, in one transaction. The statement triggers on node_history were two sets of four
-- (node_daily_delta_* from 0013, node_change_* from 0017), each set with its functions; they are
-- now the four derive_* of sql/schema/history/node_history_triggers.sql, whose one function
-- also does what node_change_refresh did. CASCADE drops the old triggers with their functions.
DROP FUNCTION inventory.node_daily_delta_apply(), inventory.node_change_after_insert(),
    inventory.node_change_after_update(), inventory.node_change_after_delete(),
    inventory.node_change_after_truncate(),
    inventory.node_change_refresh(text[], text[], timestamptz[]) CASCADE;
