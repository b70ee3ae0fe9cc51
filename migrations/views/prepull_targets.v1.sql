-- dashboard.prepull_targets v1: the prepull set of each repository, in display order.
CREATE VIEW dashboard.prepull_targets AS
SELECT
    t.registry,
    t.repository,
    t.tag,
    t.digest,
    t.position AS display_position,
    t.reference,
    CASE WHEN t.digest IS NULL THEN t.reference ELSE t.reference || '@' || t.digest END
        AS reference_with_digest,
    t.display_name,
    t.image_type,
    t.size_bytes,
    t.pull
FROM ledger.prepull_targets t;
