-- One statement that appends events and folds the node and prepull events among them:
-- the append's CTEs (ending in appended, an INSERT INTO ledger.events returning at least
-- position, type, data, occurred_at, recorded_at), the fold of nodes and node images,
-- their writes, and image_presence moved by what the new events change. All sub-statements
-- see the rows as they were before the statement: "before" is the tables, "after" the new_*
-- CTEs.
WITH {{append}},
{{events}},
{{nodes}},
{{node_images}},
{{presence}},
{{write_nodes}},
{{write_node_images}},
-- A digest whose count falls to zero loses its row (a rebuild, counting from the rows,
-- writes none for it); the two statements below touch disjoint digests.
emptied_presence AS (
    DELETE FROM ledger.image_presence p USING delta d
    WHERE p.digest = d.digest AND d.change <> 0 AND p.eligible_nodes + d.change = 0
),
moved_presence AS (
    INSERT INTO ledger.image_presence ({{presence_columns}})
    SELECT d.digest, d.change FROM delta d
    WHERE d.change <> 0 AND NOT EXISTS (
        SELECT 1 FROM ledger.image_presence p
        WHERE p.digest = d.digest AND p.eligible_nodes + d.change = 0
    )
    ON CONFLICT (digest) DO UPDATE
        SET eligible_nodes = ledger.image_presence.eligible_nodes + EXCLUDED.eligible_nodes
)
SELECT {{result}} FROM appended
