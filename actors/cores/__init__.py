"""The engine's rules, free of I/O: the store's and the scheduler's cores and the values
they work on. Nothing here imports trio or a backend (tests/actors/test_cores_pure.py)."""
