"""CaliFusion: a marketplace for confidential federated learning."""
