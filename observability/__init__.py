"""Observability as code: the OpenSearch index template, retention, security roles and the
Dashboards saved objects, all derived from the clickstream schema and the typed configuration.

Pure Python (no CDK): the observability stack passes these documents to the provisioning custom
resource, and the tests validate them without synthesising anything.
"""
