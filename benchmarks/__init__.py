"""Benchmarks and load generators (run as modules: python -m benchmarks.<name>)."""
