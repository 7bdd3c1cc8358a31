"""Batch ingestion of the feature snapshots into SageMaker Feature Store.

``records``: a snapshot row -> a ``PutRecord`` record (pure); ``put``: the bounded-retry loop over
rows, one outcome per row (written, or rejected with its reason); ``snapshot``: the Spark side, run
by the feature jobs right after they wrote their snapshot.
"""
