"""Tests of the fl layer."""
