-- dashboard.tag_history v1: every stretch of time a tag named one digest.
CREATE VIEW dashboard.tag_history AS
SELECT
    h.registry,
    h.repository,
    h.tag,
    h.seq,
    h.digest,
    lag(h.digest) OVER w AS previous_digest,
    h.valid_from,
    h.valid_until,
    h.valid_until IS NULL AS current
FROM ledger.tag_history h
WINDOW w AS (PARTITION BY h.registry, h.repository, h.tag ORDER BY h.seq);
