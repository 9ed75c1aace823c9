"""Shared data shapes: records, decisions, Arrow schemas of every output file, and the typed recipe.

Every stage and the CLI import their shapes from here, so the output contract is defined exactly once.
This package imports nothing else of tokenmill.
"""

SCHEMA_VERSION = "1"
