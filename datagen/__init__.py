"""Synthetic data with a known truth: users, clickstream, subscription histories (CDC), churn.

Start with :func:`datagen.world.build_world`; ``python -m datagen --out DIR`` writes a world to files.
"""
