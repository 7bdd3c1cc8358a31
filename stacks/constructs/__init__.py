"""Reusable constructs with secure defaults; stacks compose them."""
