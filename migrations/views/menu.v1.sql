-- dashboard.menu v1: the spawner menu, radio entries then dropdown entries, in display order.
CREATE VIEW dashboard.menu AS
WITH counted AS (
    SELECT count(*)::integer AS nodes FROM ledger.nodes n WHERE n.eligible AND n.gone_at IS NULL
)
SELECT
    m.registry,
    m.repository,
    m.section,
    m.position,
    m.tag,
    m.digest,
    m.reference,
    m.display_name,
    m.digest IS NOT NULL AND coalesce(p.eligible_nodes, 0) >= c.nodes AS prepulled
FROM ledger.menu_entries m
CROSS JOIN counted c
LEFT JOIN ledger.image_presence p ON p.digest = m.digest
WHERE NOT m.requires_prepulled
    OR (m.digest IS NOT NULL AND coalesce(p.eligible_nodes, 0) >= c.nodes)
ORDER BY m.registry, m.repository, m.section = 'dropdown', m.position;
