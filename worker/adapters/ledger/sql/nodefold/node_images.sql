-- The fold of node images: presence facts per (node, digest) apply when not older than
-- the newest fact known (ties to the later arrival; within an inventory, appeared before
-- disappeared), a truncated inventory proves presence only; prepull fields follow
-- arrival order. Reads the CTE ev; ends in new_images, one row per (node, digest) the
-- events touch, with the old row's id (row_id) and a value for every column of
-- ledger.node_images: the column's fold rule.
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
old_images AS ({{old_images}}),
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
            OVER (PARTITION BY pp.node, pp.digest) AS reset_pos,
        max(pp.position) FILTER (WHERE pp.type IN
            ('prepull.succeeded', 'prepull.unparked', 'prepull.requested'))
            OVER (PARTITION BY pp.node, pp.digest) AS park_reset
    FROM pp
),
pp_w AS (
    SELECT pp.node, pp.digest, pp.position, pp.reset_pos, pp.park_reset,
        max(pp.position) OVER w AS last_position,
        count(*) FILTER (WHERE pp.type = 'prepull.requested') OVER w AS requests,
        count(*) FILTER (WHERE pp.type = 'prepull.failed') OVER w AS failures,
        count(*) FILTER (WHERE pp.type = 'prepull.failed' AND pp.position > pp.reset_pos)
            OVER w AS after_reset,
        last_value(pp.type) OVER w AS last_type,
        bool_or(pp.type = 'prepull.parked' AND pp.position > coalesce(pp.park_reset, 0))
            OVER w AS parked_since,
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
        w.reset_pos, w.last_type, w.parked_since, w.park_reset,
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
            -- a failure reported for a parked pair (a late pod) leaves it parked
            WHEN a.last_type = 'prepull.failed'
                AND (a.parked_since OR (a.park_reset IS NULL AND o.prepull_state = 'parked'))
                THEN 'parked'
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
)
