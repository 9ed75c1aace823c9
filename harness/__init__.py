"""What runs as a Python SDK worker's process beside tokenmill's code: the boot of one on a cluster's worker machines
(boot.py), and the local runner's worker processes (local_worker.py)."""
