"""Integration tests: the transports against real loopback servers."""
