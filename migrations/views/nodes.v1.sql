-- dashboard.nodes v1: every node seen, with eligibility and inventory bookkeeping.
CREATE VIEW dashboard.nodes AS
SELECT
    n.node,
    n.eligible,
    n.comment,
    n.gone_at IS NULL AS current,
    n.eligible AND n.gone_at IS NULL AS counted,
    n.labels,
    n.taints,
    n.first_seen_at,
    n.seen_at,
    n.gone_at,
    n.last_inventory_at,
    n.last_complete_at,
    n.truncated,
    n.image_count
FROM ledger.nodes n;
