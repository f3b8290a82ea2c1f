"""Benchmark harness: the Persona API against a floor that makes the same store calls.

Bench code, not product code: it may import `personas`, never the other way round.
Run it with `make bench` (or `python -m bench --help`).
"""
