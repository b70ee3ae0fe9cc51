-- Per image to pull: first seen in the registry, on every counted node since, and the time
-- between (NULL while some counted node still lacks it).
SELECT
    tag,
    first_seen_at,
    completed_at,
    extract(epoch FROM time_to_prepull)::double precision AS time_to_prepull_seconds,
    prepulled
FROM dashboard.image_rollout
ORDER BY first_seen_at DESC, tag
