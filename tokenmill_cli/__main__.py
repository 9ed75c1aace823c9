"""`python -m tokenmill_cli ...`: the `tokenmill` command."""

import sys

from tokenmill_cli import main

sys.exit(main())
