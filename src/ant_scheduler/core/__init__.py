"""Pure domain logic: no I/O, no clock reads, no processes. Everything here is deterministic
given its arguments (randomness comes in as a `random.Random`, time as a `datetime`)."""
