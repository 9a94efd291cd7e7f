"""Fault injectors for tests: real sockets and real servers, with a path that can fail."""
