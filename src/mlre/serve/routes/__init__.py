"""The service's HTTP routes, one router per protocol: v2, MLflow, plain JSON, admin, operations."""
