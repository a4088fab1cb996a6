"""Tests of the crypto layer and the identity CLI."""
