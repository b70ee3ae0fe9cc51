-- Insert rows given as one array per column (parameters named after the columns), or
-- replace the stored rows with the same keys. For tables without array columns.
INSERT INTO {{table}} ({{columns}})
SELECT * FROM unnest({{arrays}})
ON CONFLICT ({{key}}) DO UPDATE SET {{updates}}
