"""BOS benchmark harness: wrk-driven scenarios with a floor measured in the same run.

See bench/README.md; `make bench` runs it against a stack of its own.
"""
