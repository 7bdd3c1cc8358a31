"""Glue (Spark) jobs: thin entry scripts here, pure DataFrame transforms in ``transforms``."""
