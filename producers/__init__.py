"""Scenario producers: synthetic traffic for the nine scenarios and statement ingest."""
