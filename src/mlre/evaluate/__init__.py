"""Metrics, resampling and statistical evaluation."""
