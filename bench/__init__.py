"""Benchmarks run by `make bench`; every figure is a ratio against a floor or a peer."""
