"""A run as a job on a runner: where its workers are (`remote.py`: the local paths they could not open) and the
job once submitted (`record.py`: its id and job service, its state asked again by a rerun, its cancellation)."""
