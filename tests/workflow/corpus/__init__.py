"""Stored workflow states from each Formwork release (see README.md)."""
