"""Measured figures, not pass/fail tests. Run: `.venv/bin/python -m benchmarks` (see README)."""
