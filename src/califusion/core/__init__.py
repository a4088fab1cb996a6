"""Core: errors, ids, clock and settings types. Imports nothing else from the project."""
