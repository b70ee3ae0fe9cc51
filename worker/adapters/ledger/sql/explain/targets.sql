-- The prepull targets of a repository that are the image (by tag or digest).
SELECT tag, digest, display_name, image_type, pull FROM dashboard.prepull_targets
WHERE registry = :registry AND repository = :repository AND (tag = :tag OR digest = :digest)
ORDER BY display_position, tag
