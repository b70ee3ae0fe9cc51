-- dashboard.node_images_at(node, at) v1: the digests a node held at a moment, from the log.
-- Per digest the newest observation at or before p_at wins (ties: the later arrival, and
-- within one event an absence after a presence);
-- a truncated kubelet list proves presence only. Reads event payloads of version 1.
CREATE FUNCTION dashboard.node_images_at(p_node text, p_at timestamptz)
RETURNS TABLE (node text, digest text, observed_at timestamptz, source text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH facts AS (
        SELECT e.position, e.occurred_at, a.value ->> 'digest' AS digest,
               true AS present, 'inventory' AS source
        FROM ledger.events e
        CROSS JOIN LATERAL jsonb_array_elements(e.data -> 'appeared') a
        WHERE e.stream = 'node:' || p_node AND e.type = 'node.inventory_observed'
            AND e.occurred_at <= p_at
        UNION ALL
        SELECT e.position, e.occurred_at, d.value, false, 'inventory'
        FROM ledger.events e
        CROSS JOIN LATERAL jsonb_array_elements_text(e.data -> 'disappeared') d
        WHERE e.stream = 'node:' || p_node AND e.type = 'node.inventory_observed'
            AND e.occurred_at <= p_at AND NOT (e.data ->> 'truncated')::boolean
        UNION ALL
        SELECT e.position, e.occurred_at, e.data ->> 'digest', true, 'prepull'
        FROM ledger.events e
        WHERE e.stream = 'prepull:' || p_node AND e.type = 'prepull.succeeded'
            AND e.occurred_at <= p_at
    )
    SELECT p_node, f.digest, f.occurred_at, f.source
    FROM (
        SELECT DISTINCT ON (facts.digest) facts.*
        FROM facts
        ORDER BY facts.digest, facts.occurred_at DESC, facts.position DESC, facts.present
    ) f
    WHERE f.present
$$;
