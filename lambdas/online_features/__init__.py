"""Online user clickstream features: a Kinesis consumer that keeps them fresh in the Feature Store."""
