-- The current tags of the image's type that sort newer than it.
SELECT t.tag, t.architecture, t.cycle
FROM ledger.tags t
JOIN ledger.tags me
  ON me.registry = t.registry AND me.repository = t.repository AND me.tag = :tag
WHERE t.registry = :registry AND t.repository = :repository AND t.removed_at IS NULL
  AND t.image_type = me.image_type AND t.sort_text > me.sort_text
ORDER BY t.sort_text DESC
LIMIT 1000
