"""What `run_pipeline.py` (the driver: `tokenmill run` and `tokenmill select`) does before, around and after its
pipeline, one concern a module, so that run_pipeline.py reads as the run's story: `errors.py` (how a command
ends: a usage error, a stated failure, a job left running), `flags.py` (the options every command that runs a
pipeline shares, unknown flags with their typo hints), `inputs.py` (--input and --input-list into files),
`checks.py` (the recipe's paths, and the paths a remote runner's workers cannot open), `runner.py` (the runner's
settings: the local runner, Flink's streaming mode, Spark's environment cache, Dataflow's threads, malloc,
the workers' PYTHONPATH and provision info), `decontamination.py` (the benchmark index, built once per run),
`releases.py` (the releases of [dedup] against, checked), `output_folder.py` (the output folder's states),
`job.py` (running the built pipeline as a job: metrics, stats.json's timings, failures, Ctrl-C, dry runs),
`problems.py` (what the console says of a finished run's errors), `select_source.py` (the run `tokenmill select`
reads, checked, and what its recipe may not change). Plain functions; only the driver imports
this package (split from run_pipeline.py on 2026-12-07, issue 35)."""
