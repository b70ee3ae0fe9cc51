"""The Docker registry (HTTP API v2): client, authentication, wire parsing and the tag source."""
