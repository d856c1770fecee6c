"""Measure a running inference server: HTTP client, APIs, load generator, metrics, workloads."""
