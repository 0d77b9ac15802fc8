"""Fairness: group metrics, disparities, proxies (and mitigation)."""
