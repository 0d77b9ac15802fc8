"""Experiment tracking in MLflow: runs, artifacts, provenance (the registry joins with `mlre run`)."""

from mlre.track.store import RunHandle, artifact_root, store_client, tracked_run, tracking_uri

__all__ = ["RunHandle", "artifact_root", "store_client", "tracked_run", "tracking_uri"]
