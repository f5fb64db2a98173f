"""Bundled sample data for citytwin and the scripts that rebuild it from its sources."""
