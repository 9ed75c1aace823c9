"""`python -m tokenmill_cli ...`: the `tokenmill` command."""

import sys

from tokenmill_cli import main

if __name__ == "__main__":  # not when the file is imported rather than run (runpy, a spawned process by path)
    sys.exit(main())
