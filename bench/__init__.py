"""Benchmarks: `make bench` (`python -m bench.ingest`); JSON results in bench/results/."""
