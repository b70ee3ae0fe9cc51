-- What the spawner sees of each repository (or of the one named by registry and
-- repository): the entries dashboard.menu shows (the dropdown's only where sections
-- lets it), the prepull targets and the recommended image, in order.
SELECT registry, repository, kind, tag, digest FROM (
    SELECT registry, repository, section AS kind, position, tag, digest FROM dashboard.menu
    {{sections}}
    UNION ALL
    SELECT registry, repository, 'prepull', position, tag, digest FROM ledger.prepull_targets
    UNION ALL
    SELECT registry, repository, 'recommended', position, tag, digest FROM ledger.menu_entries
    WHERE section = 'radio' AND NOT requires_prepulled
) s
WHERE CAST(:registry AS text) IS NULL OR (registry = :registry AND repository = :repository)
ORDER BY registry, repository, kind, position, tag
