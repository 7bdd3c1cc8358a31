"""Pure ``DataFrame -> DataFrame`` functions, importable by the jobs, the tests and the local runtime."""
