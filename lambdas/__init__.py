"""Lambda functions: ``lambdas/<name>/handler.py`` exposes ``handler(event, context)``."""
