-- dashboard.tag_digest_at(tag, at) v1: the digest a tag named at a moment, per repository.
CREATE FUNCTION dashboard.tag_digest_at(p_tag text, p_at timestamptz)
RETURNS TABLE (
    registry text,
    repository text,
    tag text,
    digest text,
    valid_from timestamptz,
    valid_until timestamptz
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.registry, s.repository, s.tag, s.digest, s.valid_from, s.valid_until
    FROM (
        SELECT DISTINCT ON (h.registry, h.repository)
            h.registry, h.repository, h.tag, h.digest, h.valid_from, h.valid_until
        FROM ledger.tag_history h
        WHERE h.tag = p_tag AND h.valid_from <= p_at
        ORDER BY h.registry, h.repository, h.valid_from DESC, h.seq DESC
    ) s
    WHERE s.valid_until IS NULL OR s.valid_until > p_at
$$;
