-- The current tags an image name stands for (imageledger explain): a tag in every
-- repository holding it (or the one named), or the primary tag of a digest per repository.
SELECT t.registry, t.repository, t.tag, t.digest, t.image_type, t.parsed_type,
       t.display_name, t.architecture, t.cycle, t.alias_target, t.aliases, t.flagged
FROM dashboard.tags t
WHERE (CAST(:tag AS text) IS NULL OR t.tag = :tag)
  AND (CAST(:digest AS text) IS NULL OR t.digest = :digest)
  AND (CAST(:registry AS text) IS NULL OR t.registry = :registry)
  AND (CAST(:repository AS text) IS NULL OR t.repository = :repository)
  AND (CAST(:tag AS text) IS NOT NULL OR EXISTS (
      SELECT 1 FROM dashboard.images i
      WHERE i.registry = t.registry AND i.repository = t.repository AND i.tag = t.tag))
ORDER BY t.registry, t.repository, t.type_rank, t.sort_text DESC
