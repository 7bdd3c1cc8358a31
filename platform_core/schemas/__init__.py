"""Dataset schemas, each defined once (see :mod:`platform_core.schema`)."""
