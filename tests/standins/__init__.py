"""Protocol-level stand-ins for external services, so tests exercise real sockets without the internet."""
