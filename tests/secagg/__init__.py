"""Tests of secure aggregation: Shamir, PRG, quantization, graph and the SecAgg+ machines."""
