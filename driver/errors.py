"""How a command that runs a pipeline ends other than with its stats: the exceptions `run_pipeline.main` turns
into one line and an exit code."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class RunFailed(Exception):
    """The pipeline stopped on a condition the run states in one line (near dedup did not converge, a released
    index file missing or failing its checksum): exit 1."""


class JobLeftRunning(KeyboardInterrupt):
    """Ctrl-C while the driver waited for a job its runner could not cancel: exit 130 as for any Ctrl-C, with a
    line saying the job runs on (and its id) instead of the one that says the same command runs it again (a
    rerun is refused while the job runs: prepare_output)."""
