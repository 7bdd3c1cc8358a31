"""Firehose transformation of clickstream events into rows of the raw lake (see handler.py)."""
