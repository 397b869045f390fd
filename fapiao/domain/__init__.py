"""Domain rules: plain, synchronous Python with no Kafka, database or network in it."""
