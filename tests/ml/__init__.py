"""Tests of the ml layer."""
