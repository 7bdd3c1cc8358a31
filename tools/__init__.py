"""Developer tooling invoked by the Makefile."""
