-- dashboard.images v1: one row per digest of a repository, named by its primary image.
CREATE VIEW dashboard.images AS
SELECT
    i.registry,
    i.repository,
    i.digest,
    i.tag,
    i.display_name,
    i.image_type,
    i.type_rank,
    i.position AS display_position,
    i.aliases,
    i.architecture,
    i.size_bytes
FROM ledger.images i
WHERE i.is_primary AND i.digest IS NOT NULL;
