"""Benchmarks of the template and of what it renders; run from the repository
root as modules: `.venv/bin/python -m tests.benchmarks.<name> --help`."""
