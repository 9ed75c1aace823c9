"""Hand-off to training: immutable releases (shards + manifest + dataset card), verification, and a
dependency-light reader of packed token sequences."""
