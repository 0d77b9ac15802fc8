"""The HTTP service: protocols, routing (champion, shadow, canary), rollback, logs, metrics."""
