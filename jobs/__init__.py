"""A run as a job on a runner: where its workers are (`remote.py`: the local paths they could not open)."""
