-- Count image_presence from scratch (into the empty table) after a replay: per digest,
-- the eligible nodes that are not gone and hold it.
INSERT INTO ledger.image_presence ({{columns}})
SELECT ni.digest, count(*)
FROM ledger.node_images ni JOIN ledger.nodes n ON n.node = ni.node
WHERE ni.present AND n.eligible AND n.gone_at IS NULL
GROUP BY ni.digest
