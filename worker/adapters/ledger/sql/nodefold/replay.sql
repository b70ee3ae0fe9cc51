-- Fold the node and prepull events of a position range into a pair of tables (the
-- rebuild's staging tables), leaving image_presence to count_presence. Returns how many
-- rows were written.
WITH {{events}},
{{nodes}},
{{node_images}},
{{write_nodes}},
{{write_node_images}}
SELECT (SELECT count(*) FROM inserted_nodes) + (SELECT count(*) FROM updated_nodes)
    + (SELECT count(*) FROM inserted_images) + (SELECT count(*) FROM updated_images)
