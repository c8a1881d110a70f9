"""Benchmarks, run from the README; each prints a summary and a final JSON line."""
