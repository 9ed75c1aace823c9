"""`python -m tokenmill_cli ...`: the `tokenmill` command."""

import sys

from tokenmill_cli import main

if __name__ == "__main__":  # not when a spawned process (classifiers/tuning.py) imports it
    sys.exit(main())
