"""The node-scoped projections (nodes, node_images, image_presence) folded set-based in SQL.

Node inventories and prepulls are most of the log, so their fold runs inside PostgreSQL: one
statement folds every node and prepull event of a batch into the current rows, in position
order; an append's batch is the events the same statement inserts (``append_sql``), a
rebuild's a position range of the log (``replay_sql``). It implements the rules of
``worker.domain.ledger`` (the specification): the rebuild-parity property test checks that
both give the same rows.

- per (node, digest), presence facts apply when not older than the newest fact known
  (ties to the later arrival; within an inventory, appeared before disappeared), and a
  truncated inventory proves presence only;
- a node's labels, taints and eligibility follow its newest applied ``node.seen`` /
  ``node.gone``; inventory bookkeeping keeps the newest list's truncation and size;
- prepull fields follow arrival order (counts, consecutive failures since the last success
  or unpark, last request, last finish, last reason);
- ``image_presence`` moves by the difference of (eligible, current node) x (present) over
  every pair the range touches, computed from the rows before and after.

All sub-statements see the rows as they were before the statement, so "before" is the
tables and "after" is the ``new_*`` CTEs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NODE_EVENT_TYPES", "append_sql", "count_presence", "replay_sql"]

NODE_EVENT_TYPES = (
    "node.seen",
    "node.gone",
    "node.inventory_observed",
    "prepull.requested",
    "prepull.succeeded",
    "prepull.failed",
    "prepull.parked",
    "prepull.unparked",
)

_EVENTS = """
ev AS (
    SELECT e.position, e.type, e.data, e.occurred_at AS at
    FROM ledger.events e
    WHERE e.position > $1 AND e.position <= $2 AND e.type = ANY($3::text[]){partition}
)"""

_NODES = """
life AS (
    SELECT (ev.data ->> 'node') COLLATE "C" AS node, ev.position, ev.at,
           ev.type = 'node.gone' AS gone,
           ev.data -> 'labels' AS labels, ev.data -> 'taints' AS taints,
           (ev.data ->> 'eligible')::boolean AS eligible, ev.data ->> 'comment' AS comment
    FROM ev WHERE ev.type IN ('node.seen', 'node.gone')
),
inv AS (
    SELECT (ev.data ->> 'node') COLLATE "C" AS node, ev.position, ev.at,
           (ev.data ->> 'truncated')::boolean AS truncated,
           (ev.data ->> 'image_count')::integer AS image_count
    FROM ev WHERE ev.type = 'node.inventory_observed'
),
node_keys AS (
    SELECT x.node, min(x.at) AS first_at
    FROM (SELECT node, at FROM life UNION ALL SELECT node, at FROM inv) x
    GROUP BY x.node
),
old_nodes AS ({old_nodes}),
life_ranked AS (
    SELECT l.*, l.at >= coalesce(greatest(o.seen_at, max(l.at) OVER w), '-infinity') AS applied
    FROM life l LEFT JOIN old_nodes o ON o.node = l.node
    WINDOW w AS (PARTITION BY l.node ORDER BY l.position
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
last_life AS (
    SELECT DISTINCT ON (node) node, at, gone
    FROM life_ranked WHERE applied ORDER BY node, position DESC
),
last_seen AS (
    SELECT DISTINCT ON (node) node, labels, taints, eligible, comment
    FROM life_ranked WHERE applied AND NOT gone ORDER BY node, position DESC
),
inv_ranked AS (
    SELECT i.*,
           i.at >= coalesce(greatest(o.last_inventory_at, max(i.at) OVER w), '-infinity')
               AS applied
    FROM inv i LEFT JOIN old_nodes o ON o.node = i.node
    WINDOW w AS (PARTITION BY i.node ORDER BY i.position
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
last_inv AS (
    SELECT DISTINCT ON (node) node, truncated, image_count
    FROM inv_ranked WHERE applied ORDER BY node, position DESC
),
inv_times AS (
    SELECT node, max(at) AS last_at, max(at) FILTER (WHERE NOT truncated) AS complete_at
    FROM inv GROUP BY node
),
new_nodes AS (
    SELECT k.node, o.row_id,
        least(o.first_seen_at, k.first_at) AS first_seen_at,
        coalesce(s.labels, o.labels, '{}'::jsonb) AS labels,
        coalesce(s.taints, o.taints, '[]'::jsonb) AS taints,
        coalesce(s.eligible, o.eligible, false) AS eligible,
        CASE WHEN s.node IS NOT NULL THEN s.comment ELSE o.comment END AS comment,
        coalesce(ll.at, o.seen_at) AS seen_at,
        CASE WHEN ll.node IS NULL THEN o.gone_at WHEN ll.gone THEN ll.at END AS gone_at,
        greatest(o.last_inventory_at, it.last_at) AS last_inventory_at,
        greatest(o.last_complete_at, it.complete_at) AS last_complete_at,
        CASE WHEN li.node IS NOT NULL THEN li.truncated ELSE o.truncated END AS truncated,
        CASE WHEN li.node IS NOT NULL THEN li.image_count ELSE o.image_count END AS image_count
    FROM node_keys k
    LEFT JOIN old_nodes o ON o.node = k.node
    LEFT JOIN last_seen s ON s.node = k.node
    LEFT JOIN last_life ll ON ll.node = k.node
    LEFT JOIN last_inv li ON li.node = k.node
    LEFT JOIN inv_times it ON it.node = k.node
)"""

_FACTS = """
pf AS (
    SELECT (ev.data ->> 'node') COLLATE "C" AS node, (a.value ->> 'digest') COLLATE "C" AS digest,
           ev.position, 0 AS part,
           a.ord, ev.at, true AS present, 'inventory' AS source,
           (a.value ->> 'size_bytes')::bigint AS size
    FROM ev CROSS JOIN LATERAL jsonb_array_elements(ev.data -> 'appeared')
        WITH ORDINALITY AS a(value, ord)
    WHERE ev.type = 'node.inventory_observed'
    UNION ALL
    SELECT (ev.data ->> 'node') COLLATE "C", d.value COLLATE "C", ev.position, 1, d.ord, ev.at,
           false, 'inventory',
           NULL::bigint
    FROM ev CROSS JOIN LATERAL jsonb_array_elements_text(ev.data -> 'disappeared')
        WITH ORDINALITY AS d(value, ord)
    WHERE ev.type = 'node.inventory_observed' AND NOT (ev.data ->> 'truncated')::boolean
    UNION ALL
    SELECT (ev.data ->> 'node') COLLATE "C", (ev.data ->> 'digest') COLLATE "C", ev.position, 0,
           0, ev.at, true, 'prepull',
           NULL::bigint
    FROM ev WHERE ev.type = 'prepull.succeeded'
),
pp AS (
    SELECT (ev.data ->> 'node') COLLATE "C" AS node, (ev.data ->> 'digest') COLLATE "C" AS digest,
           ev.position, ev.type,
           ev.at, ev.data
    FROM ev WHERE ev.type LIKE 'prepull.%'
),
image_keys AS (SELECT node, digest FROM pf UNION SELECT node, digest FROM pp),
old_images AS ({old_images}),
pf_ranked AS (
    SELECT f.*,
           row_number() OVER o AS seq,
           f.at >= coalesce(greatest(i.observed_at, max(f.at) OVER w), '-infinity') AS applied
    FROM pf f LEFT JOIN old_images i ON i.node = f.node AND i.digest = f.digest
    WINDOW o AS (PARTITION BY f.node, f.digest ORDER BY f.position, f.part, f.ord),
           w AS (o ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
pf_applied AS (SELECT * FROM pf_ranked WHERE applied),
pf_w AS (
    SELECT a.node, a.digest, a.seq, a.present, a.at,
        last_value(a.present) OVER w AS final_present,
        last_value(a.at) OVER w AS final_at,
        last_value(a.source) OVER w AS final_source,
        array_agg(a.size) FILTER (WHERE a.size IS NOT NULL) OVER w AS sizes,
        max(a.seq) FILTER (WHERE NOT a.present) OVER w AS last_absent
    FROM pf_applied a
    WINDOW w AS (PARTITION BY a.node, a.digest ORDER BY a.seq
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
presence AS (
    SELECT node, digest,
        bool_and(final_present) AS present,
        max(final_at) AS at,
        max(final_source) AS source,
        max(sizes[array_upper(sizes, 1)]) AS size,
        max(last_absent) AS last_absent,
        min(at) FILTER (WHERE present AND seq > coalesce(last_absent, 0)) AS since
    FROM pf_w GROUP BY node, digest
),
pp_r AS (
    SELECT pp.*,
        max(pp.position) FILTER (WHERE pp.type IN ('prepull.succeeded', 'prepull.unparked'))
            OVER (PARTITION BY pp.node, pp.digest) AS reset_pos
    FROM pp
),
pp_w AS (
    SELECT pp.node, pp.digest, pp.position, pp.reset_pos,
        max(pp.position) OVER w AS last_position,
        count(*) FILTER (WHERE pp.type = 'prepull.requested') OVER w AS requests,
        count(*) FILTER (WHERE pp.type = 'prepull.failed') OVER w AS failures,
        count(*) FILTER (WHERE pp.type = 'prepull.failed' AND pp.position > pp.reset_pos)
            OVER w AS after_reset,
        last_value(pp.type) OVER w AS last_type,
        array_agg(pp.at) FILTER (WHERE pp.type = 'prepull.requested') OVER w AS requested,
        array_agg(pp.data ->> 'deadline') FILTER (WHERE pp.type = 'prepull.requested')
            OVER w AS deadlines,
        array_agg(pp.at) FILTER (WHERE pp.type IN ('prepull.succeeded', 'prepull.failed'))
            OVER w AS finished,
        array_agg(CASE WHEN pp.type <> 'prepull.succeeded' THEN pp.data ->> 'reason' END)
            FILTER (WHERE pp.type <> 'prepull.requested') OVER w AS reasons,
        array_agg(pp.data ->> 'registry') FILTER (WHERE pp.type IN
            ('prepull.requested', 'prepull.succeeded', 'prepull.failed')) OVER w AS registries,
        array_agg(pp.data ->> 'repository') FILTER (WHERE pp.type IN
            ('prepull.requested', 'prepull.succeeded', 'prepull.failed')) OVER w AS repositories,
        array_agg(pp.data ->> 'tag') FILTER (WHERE pp.type IN
            ('prepull.requested', 'prepull.succeeded', 'prepull.failed')
            AND pp.data ->> 'tag' IS NOT NULL) OVER w AS tags
    FROM pp_r pp
    WINDOW w AS (PARTITION BY pp.node, pp.digest ORDER BY pp.position
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
pp_agg AS (
    SELECT w.node, w.digest, w.requests, w.failures, w.after_reset,
        w.reset_pos, w.last_type,
        w.requested[array_upper(w.requested, 1)] AS requested_at,
        w.deadlines[array_upper(w.deadlines, 1)] AS deadline,
        w.finished[array_upper(w.finished, 1)] AS finished_at,
        w.reasons IS NOT NULL AS has_reason,
        w.reasons[array_upper(w.reasons, 1)] AS reason,
        w.registries[array_upper(w.registries, 1)] AS registry,
        w.repositories[array_upper(w.repositories, 1)] AS repository,
        w.tags[array_upper(w.tags, 1)] AS tag
    FROM pp_w w
    WHERE w.position = w.last_position
),
new_images AS (
    SELECT k.node, k.digest, o.row_id,
        CASE WHEN p.node IS NULL THEN o.present ELSE p.present END AS present,
        CASE WHEN p.node IS NULL THEN o.observed_at ELSE p.at END AS observed_at,
        CASE WHEN p.node IS NULL THEN o.source ELSE p.source END AS source,
        coalesce(p.size, o.size_bytes) AS size_bytes,
        CASE
            WHEN p.node IS NULL THEN o.present_since
            WHEN NOT p.present THEN NULL
            WHEN p.last_absent IS NULL AND o.present IS TRUE THEN o.present_since
            ELSE p.since
        END AS present_since,
        CASE
            WHEN a.node IS NULL THEN o.prepull_state
            WHEN a.last_type = 'prepull.unparked' THEN NULL
            ELSE substr(a.last_type, 9)
        END AS prepull_state,
        coalesce(o.prepull_requests, 0) + coalesce(a.requests, 0)::integer AS prepull_requests,
        CASE WHEN a.reset_pos IS NOT NULL THEN a.after_reset::integer
             ELSE coalesce(o.prepull_failures, 0) + coalesce(a.failures, 0)::integer
        END AS prepull_failures,
        coalesce(o.prepull_failures_total, 0) + coalesce(a.failures, 0)::integer
            AS prepull_failures_total,
        coalesce(a.requested_at, o.prepull_requested_at) AS prepull_requested_at,
        CASE WHEN a.requested_at IS NOT NULL THEN a.deadline::timestamptz
             ELSE o.prepull_deadline END AS prepull_deadline,
        coalesce(a.finished_at, o.prepull_finished_at) AS prepull_finished_at,
        CASE WHEN a.has_reason THEN a.reason ELSE o.prepull_reason END AS prepull_reason,
        coalesce(a.registry, o.registry) AS registry,
        coalesce(a.repository, o.repository) AS repository,
        coalesce(a.tag, o.tag) AS tag
    FROM image_keys k
    LEFT JOIN old_images o ON o.node = k.node AND o.digest = k.digest
    LEFT JOIN presence p ON p.node = k.node AND p.digest = k.digest
    LEFT JOIN pp_agg a ON a.node = k.node AND a.digest = k.digest
)"""

_PRESENCE = """
life_images AS (
    SELECT ni.node, ni.digest, ni.present FROM (SELECT DISTINCT node FROM life) l
    CROSS JOIN LATERAL (
        SELECT ni.node, ni.digest, ni.present FROM ledger.node_images ni
        WHERE ni.node = l.node
        OFFSET 0  -- an index range per node that comes or goes
    ) ni
),
contributions AS (
    SELECT o.digest, -1 AS change
    FROM (
        SELECT node, digest, present FROM old_images
        UNION ALL
        SELECT li.node, li.digest, li.present FROM life_images li
        WHERE NOT EXISTS (
            SELECT 1 FROM image_keys k WHERE k.node = li.node AND k.digest = li.digest
        )
    ) o
    WHERE o.present AND EXISTS (
        SELECT 1 FROM ledger.nodes n
        WHERE n.node = o.node AND n.eligible AND n.gone_at IS NULL
        OFFSET 0  -- one index probe per row, never a scan of every node
    )
    UNION ALL
    SELECT ni.digest, 1
    FROM new_images ni
    LEFT JOIN new_nodes nn ON nn.node = ni.node
    LEFT JOIN LATERAL (
        SELECT n.eligible, n.gone_at FROM ledger.nodes n WHERE n.node = ni.node
        OFFSET 0  -- as above
    ) n ON true
    WHERE ni.present AND CASE WHEN nn.node IS NOT NULL THEN nn.eligible AND nn.gone_at IS NULL
                              ELSE coalesce(n.eligible AND n.gone_at IS NULL, false) END
    UNION ALL
    SELECT li.digest, 1
    FROM life_images li JOIN new_nodes nn ON nn.node = li.node
    WHERE li.present AND nn.eligible AND nn.gone_at IS NULL
        AND NOT EXISTS (
            SELECT 1 FROM image_keys k WHERE k.node = li.node AND k.digest = li.digest
        )
),
delta AS (SELECT digest, sum(change) AS change FROM contributions GROUP BY digest)"""

_NODE_COLUMNS = (
    "node, first_seen_at, labels, taints, eligible, comment, seen_at, gone_at, "
    "last_inventory_at, last_complete_at, truncated, image_count"
)
_IMAGE_COLUMNS = (
    "node, digest, present, observed_at, source, size_bytes, present_since, prepull_state, "
    "prepull_requests, prepull_failures, prepull_failures_total, prepull_requested_at, "
    "prepull_deadline, prepull_finished_at, prepull_reason, registry, repository, tag"
)


def _old_rows(table: str, keys: str, columns: tuple[str, ...], *, probe: bool) -> str:
    """The stored rows of ``table`` for the keys in the CTE ``keys``, with their row ids.

    An append touches a few hundred keys of tables that grow with nodes x images, and its
    plan is made once (``eventlog.GENERIC_PLAN``): it probes them, one index probe per key,
    never a scan. A replay range touches most of its (staging) table: the planner joins.
    """
    match = " AND ".join(f"t.{c} = k.{c}" for c in columns)
    if probe:
        return f"""
    SELECT t.* FROM {keys} k
    CROSS JOIN LATERAL (
        SELECT t.ctid AS row_id, * FROM {table} t WHERE {match}
        OFFSET 0  -- one index probe per key, never a scan of the table
    ) t
"""
    return f"\n    SELECT t.ctid AS row_id, t.* FROM {table} t JOIN {keys} k ON {match}\n"


def _sets(columns: str, keys: int) -> str:
    names = [c.strip() for c in columns.split(",")][keys:]
    return ", ".join(f"{n} = n.{n}" for n in names)


def _table_writes(name: str, table: str, rows: str, columns: str, keys: int, returning: str) -> str:
    """Write ``rows`` (a CTE of new values with the old row ids) into ``table``: the old rows
    were read by the same statement (with their row ids) under the append lock, so new rows
    are plain inserts (no speculative insertion) and old ones are updated by row id (no
    second key lookup, no join to plan, no tuple lock as with ``ON CONFLICT``)."""
    return f"""
inserted_{name} AS (
    INSERT INTO {table} ({columns})
    SELECT {columns} FROM {rows} WHERE row_id IS NULL{returning}
),
updated_{name} AS (
    UPDATE {table} t SET {_sets(columns, keys)}
    FROM {rows} n WHERE t.ctid = n.row_id{returning}
)"""


def _row_writes(returning: str) -> str:
    nodes = _table_writes("nodes", "ledger.nodes", "new_nodes", _NODE_COLUMNS, 1, returning)
    images = _table_writes(
        "images", "ledger.node_images", "new_images", _IMAGE_COLUMNS, 2, returning
    )
    return f"{nodes},{images}"


_APPEND_WRITES = f"""{_row_writes("")},
moved_presence AS (
    INSERT INTO ledger.image_presence (digest, eligible_nodes)
    SELECT digest, change FROM delta WHERE change <> 0
    ON CONFLICT (digest) DO UPDATE
        SET eligible_nodes = ledger.image_presence.eligible_nodes + EXCLUDED.eligible_nodes
)"""

_REPLAY_WRITES = _row_writes("\n    RETURNING 1")


def _fold_ctes(*, append: bool, events: str) -> str:
    old_nodes = _old_rows("ledger.nodes", "node_keys", ("node",), probe=append)
    old_images = _old_rows("ledger.node_images", "image_keys", ("node", "digest"), probe=append)
    nodes = _NODES.replace("{old_nodes}", old_nodes)
    facts = _FACTS.replace("{old_images}", old_images)
    if append:
        return f"{events},\n{nodes},\n{facts},\n{_PRESENCE},\n{_APPEND_WRITES}"
    return f"{events},\n{nodes},\n{facts},\n{_REPLAY_WRITES}"


_APPENDED_EVENTS = f"""
ev AS (
    SELECT a.position, a.type, a.data, a.occurred_at AS at
    FROM appended a WHERE a.type IN ({", ".join(f"'{t}'" for t in NODE_EVENT_TYPES)})
)"""


def append_sql(append_ctes: str, result: str) -> str:
    """One statement that appends events and folds the node and prepull events among them.

    ``append_ctes`` is a WITH list ending in ``appended``, an ``INSERT INTO ledger.events``
    returning at least ``position, type, data, occurred_at``; ``result`` is the statement's
    SELECT list over ``appended``. The fold reads the new events from ``appended``, so they
    are not read back from the log, and moves ``image_presence`` by what they change.
    """
    fold = _fold_ctes(append=True, events=_APPENDED_EVENTS)
    return f"WITH {append_ctes},\n{fold}\nSELECT {result} FROM appended"


REPLAY_SQL = f"""
WITH {_fold_ctes(append=False, events=_EVENTS.format(partition=""))}
SELECT (SELECT count(*) FROM inserted_nodes) + (SELECT count(*) FROM updated_nodes)
    + (SELECT count(*) FROM inserted_images) + (SELECT count(*) FROM updated_images)
"""
"""Fold a position range, leaving ``image_presence`` to ``COUNT_PRESENCE_SQL`` (rebuild)."""

COUNT_PRESENCE_SQL = """
INSERT INTO ledger.image_presence (digest, eligible_nodes)
SELECT ni.digest, count(*)
FROM ledger.node_images ni JOIN ledger.nodes n ON n.node = ni.node
WHERE ni.present AND n.eligible AND n.gone_at IS NULL
GROUP BY ni.digest
"""
"""Count ``image_presence`` from scratch (into an empty table) after a replay."""


_PARTITION = """
        AND (hashtext(e.data ->> 'node') & 2147483647) % $4 = $5"""


def replay_sql(nodes: str, images: str) -> str:
    """The replay statement writing into other tables, for one of ``$4`` partitions of the
    nodes (``$5``, by a hash of the node name)."""
    sql = REPLAY_SQL.replace(_EVENTS.format(partition=""), _EVENTS.format(partition=_PARTITION))
    return sql.replace("ledger.node_images", images).replace("ledger.nodes", nodes)


async def count_presence(db: Any) -> None:
    """Fill the (empty) ``image_presence`` table from the node and node-image rows."""
    await db.execute(COUNT_PRESENCE_SQL)
