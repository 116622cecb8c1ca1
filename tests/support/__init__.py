"""Helpers for the integration and end-to-end tests (real broker, real database, real worker processes)."""
