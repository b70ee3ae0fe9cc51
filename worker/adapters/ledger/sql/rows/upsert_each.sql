-- Insert one row (parameters named after the columns), or replace the stored row with
-- the same key. Run once per row (executemany), for tables with array columns.
INSERT INTO {{table}} ({{columns}})
VALUES ({{values}})
ON CONFLICT ({{key}}) DO UPDATE SET {{updates}}
