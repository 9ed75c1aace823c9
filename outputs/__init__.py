"""The run's output files: sorted, streamed zstd Parquet parts (shards, ledger), manifest.json, stats.json.

Plain Python over Beam's FileSystems (local paths, gs://, s3:// alike). `pipelines/` decides what goes in
which part; this package writes a part deterministically and atomically.
"""
