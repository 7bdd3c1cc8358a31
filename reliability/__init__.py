"""Reliability tooling: fault injection, deterministic workloads and checks for the reliability tests.

- :mod:`reliability.faults`: a Kinesis client that loses acknowledgements and throttles, a boto3
  client proxy that makes the process "die" right after a side effect, handler wrappers that
  crash after their side effects, and Firehose's retry of a failed transformation invocation;
- :mod:`reliability.workload`: seeded clickstream events, malformed records and DMS CDC records;
- :mod:`reliability.parquet_compat`: whether Parquet files written with one schema can be read
  with another (the check that catches an incompatible type change before a reader does);
- :mod:`reliability.stateful_ids`: the stateful resources of the synthesised ``prod`` templates
  (``python -m reliability.stateful_ids`` regenerates the checked-in list).

Runtime code never imports this package: it is test-side tooling that drives the real handlers.
"""
