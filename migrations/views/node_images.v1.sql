-- dashboard.node_images v1: what is known of each digest on each node, with image names.
CREATE VIEW dashboard.node_images AS
SELECT
    ni.node,
    ni.digest,
    ni.present,
    ni.observed_at,
    ni.source,
    ni.size_bytes,
    ni.present_since,
    i.registry,
    i.repository,
    i.tag,
    i.display_name
FROM ledger.node_images ni
LEFT JOIN ledger.images i ON i.digest = ni.digest AND i.is_primary
WHERE ni.present IS NOT NULL;
