"""Attributions and effects: why a model predicts what it predicts."""
