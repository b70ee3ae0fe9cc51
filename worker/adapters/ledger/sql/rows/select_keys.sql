-- The rows of a table (alias x) whose primary keys are given as one array per key
-- column (parameters named after the key columns).
SELECT {{columns}} FROM {{table}} x
JOIN unnest({{arrays}}) AS k({{key}}) ON {{match}}
