"""Benchmark matrices: schema, runner, executors, results store, scoring and metrics."""
