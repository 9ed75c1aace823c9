"""Real engines on loopback, for the engine tests and bench/engines.py: a Flink session cluster (a JobManager and
a TaskManager), a Spark standalone master and worker, Beam's Flink and Spark job servers, and the EXTERNAL pool of
Python SDK workers installed from tokenmill's wheel in a virtual environment of its own.

Not shipped in the wheel: a user brings their own cluster. Everything is fetched from the project's registries
(Maven Central, PyPI) into one cache folder (`cache_dir`), once, and reused: `python -m clusters fetch` fills it."""
