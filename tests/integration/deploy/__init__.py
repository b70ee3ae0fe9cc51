"""Integration tests of deploy/: the compose stack's processes against the real services."""
