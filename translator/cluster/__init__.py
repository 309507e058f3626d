"""Several translators sharing one Redis: who owns each device (ownership.py: the decisions;
redis_ownership.py: the claims, heartbeats and fences on Redis). docs/cluster.md describes the design."""
