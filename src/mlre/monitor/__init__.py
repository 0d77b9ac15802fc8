"""Monitoring: drift, performance over time and without labels, data quality of traffic."""
