-- Tag moves since a time, with the tags that name the old and the new digest.
SELECT h.registry, h.repository, h.tag, h.valid_from AS moved_at, h.previous_digest,
       h.digest, p.tag AS previous_tag, n.tag AS new_tag
FROM dashboard.tag_history h
LEFT JOIN dashboard.images p
    ON p.registry = h.registry AND p.repository = h.repository AND p.digest = h.previous_digest
LEFT JOIN dashboard.images n
    ON n.registry = h.registry AND n.repository = h.repository AND n.digest = h.digest
WHERE h.previous_digest IS NOT NULL AND h.digest IS NOT NULL AND h.valid_from > :since
ORDER BY h.valid_from DESC, h.tag
