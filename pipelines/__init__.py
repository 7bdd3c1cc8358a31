"""SageMaker pipeline scripts (container contract) and the pipeline definition builder."""
