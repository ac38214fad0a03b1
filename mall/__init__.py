"""The mall's domain: models, services and rules. Knows nothing of HTTP or job queues."""
