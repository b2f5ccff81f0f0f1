"""The fault-injection matrix: every fault × every I/O mode × every method class."""
