"""Ground layer of the platform: typed configuration, resource names and data schemas.

Pure Python with no AWS CDK import, so that Lambda functions, Glue jobs, the local runtime,
the stacks and the tests all read the very same definitions.
"""
