"""Benchmarks: figures printed and written to build/bench/, never timed tests."""
