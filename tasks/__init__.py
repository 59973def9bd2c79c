"""Benchmark task definitions, loaded by vpbench.registry as the package ``vpbench_tasks``."""
