"""Pure estimator functions: memory parts, placement on devices (no I/O)."""
