"""The whole platform on an embedded AWS (moto in server mode, in process).

Same code as in AWS (the producer library, the Lambda handlers, the Glue transforms on a local
SparkSession, the pipeline scripts), same names and schemas (platform_core). Where moto has no data
plane, a small runner in this package stands in for the AWS behaviour, documented per runner.
"""
