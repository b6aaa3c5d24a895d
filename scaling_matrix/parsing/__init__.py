"""Lines in, records and problems out. Never raises on garbage."""
