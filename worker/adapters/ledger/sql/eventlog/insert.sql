-- Append events whose keys are not in the log yet, at the next positions (no node or
-- prepull event among them: nothing to fold in SQL).
WITH {{append}}
SELECT {{result}} FROM appended
