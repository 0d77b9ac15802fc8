"""Prometheus metrics of one service, in a registry of its own (so two services in one process,
as in tests, never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Latency buckets (seconds) from sub-millisecond model calls to slow batches.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """Requests, errors and latency per model version and role; shadow disagreement; rollbacks."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("model", "version", "role")
        self.requests = Counter(
            "mlre_requests",
            "Predictions made, by outcome",
            (*labels, "outcome"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlre_prediction_latency_seconds",
            "Time to predict one request",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "mlre_rejected_requests",
            "Requests refused before any model saw them, by status",
            ("status",),
            registry=self.registry,
        )
        self.shadow_compared = Counter(
            "mlre_shadow_comparisons",
            "Shadowed requests whose two answers were compared",
            ("model", "version"),
            registry=self.registry,
        )
        self.shadow_disagreed = Counter(
            "mlre_shadow_disagreements",
            "Shadowed requests answered differently by the challenger",
            ("model", "version"),
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "mlre_shadow_dropped",
            "Shadow predictions skipped because the shadow queue was full",
            ("model",),
            registry=self.registry,
        )
        self.shed = Counter(
            "mlre_shed_requests",
            "Requests refused (503) or mirrors skipped because a queue was full",
            ("model", "queue"),
            registry=self.registry,
        )
        self.throttled = Counter(
            "mlre_throttled_requests",
            "Requests refused (429) because their client had spent its budget",
            ("model",),
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "mlre_prediction_log_dropped",
            "Prediction records lost: the log's queue was full or its database kept failing",
            ("model",),
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "mlre_rollbacks",
            "Challengers rolled back by the service",
            ("model", "version"),
            registry=self.registry,
        )
        self.serving = Gauge(
            "mlre_serving_version",
            "The version serving each role (1 while it does)",
            labels,
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
