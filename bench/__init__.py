"""Benchmarks behind ``fleetlink bench ...`` (see bench/README.md)."""
