"""CDC processor: DMS change records of ``subscriptions`` -> transitions, state, Avro change log."""
