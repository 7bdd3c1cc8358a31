"""Capacity and cost planner: ``python -m planner --help``. Arithmetic in :mod:`planner.model`,
prices as data in ``planner/prices/<region>.json``, costs in :mod:`planner.costs`."""
