-- The removed tags of a name, in every repository (or the one named), with their removal time.
SELECT registry, repository, removed_at FROM ledger.tags
WHERE tag = :tag AND removed_at IS NOT NULL
  AND (CAST(:registry AS text) IS NULL OR registry = :registry)
  AND (CAST(:repository AS text) IS NULL OR repository = :repository)
ORDER BY registry, repository
