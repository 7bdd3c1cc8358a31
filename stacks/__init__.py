"""CDK stacks and constructs (layer 3): the only place that imports ``aws_cdk``."""
