"""The HTTP API's routes, one router per area: ``chat``, ``sessions``, ``knowledge`` (the /v1 routes, which need
an API key) and ``operations`` (health, readiness, metrics; no key)."""
