-- dashboard.prepull_status with whether each target is the recommended image (the one radio
-- entry of the menu shown whether prepulled or not).
SELECT s.registry, s.repository, s.tag, s.digest, s.display_name, s.display_position,
       s.eligible_nodes, s.present_nodes, s.missing_nodes, s.prepulled,
       coalesce(s.digest = r.digest, false) AS recommended
FROM dashboard.prepull_status s
LEFT JOIN ledger.menu_entries r
    ON r.registry = s.registry AND r.repository = s.repository
   AND r.section = 'radio' AND NOT r.requires_prepulled
ORDER BY s.registry, s.repository, s.display_position
