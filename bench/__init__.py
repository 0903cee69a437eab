"""Benchmarks: run with `make bench`; results go to bench/RESULTS.md by hand, with the machine."""
