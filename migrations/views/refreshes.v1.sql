-- dashboard.refreshes v1: every refresh of every repository, newest first.
CREATE VIEW dashboard.refreshes AS
SELECT
    r.refresh_id,
    r.registry,
    r.repository,
    r.status,
    r.started_at,
    r.finished_at,
    r.duration_seconds,
    r.tags_total,
    r.discovered,
    r.resolved,
    r.moved,
    r.removed,
    (SELECT coalesce(sum((q ->> 'count')::bigint), 0) FROM jsonb_array_elements(r.requests) q)
        AS requests_total,
    r.requests,
    r.retries,
    r.bytes_received,
    r.flagged_tags,
    r.rate_limits,
    r.reason
FROM ledger.refreshes r
ORDER BY r.started_at DESC, r.refresh_id;
