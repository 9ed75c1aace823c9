"""What runs on a cluster's worker machines beside tokenmill's code: the boot of a Python SDK worker."""
