"""Datasets and tasks: user files, the bundled datasets, token (BIO) data, and what differs per task. Torch-free."""
