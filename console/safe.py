"""Record data shown on a terminal, not obeyed by it.

A URL, a Content-Type, a page's text, a file name or an error message quoting one can carry an ESC sequence
(which retitles the window, recolours or clears the screen), a bare CR (which overwrites the line), a C1 control
(0x9b is a one-byte CSI on some terminals) or a Unicode bidirectional override or isolate (which reorders what
follows it on the line). `shown` writes each of these as a visible escape (`\\x1b`, `\\r`, `\\x9b`, `\\u202e`) and
leaves every other character as it is, so a line of ordinary text is unchanged. `--json` output does not need
it (json.dumps escapes control characters; the bidi characters stay as data).

A backslash is not doubled: `\\x1b` on the screen is either an ESC or those four characters in the data, which
`--json` tells apart. Lone surrogates (a file name that is not UTF-8, from the command line) are escaped too, so
printing never fails on them.
"""

from __future__ import annotations

import argparse
import sys

# Bidirectional formatting characters: embeddings and overrides (U+202A-202E), isolates (U+2066-2069), the
# marks LRM, RLM (U+200E, U+200F) and the Arabic letter mark (U+061C).
BIDI = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# C0 (0x00-0x1f), DEL, C1 (0x80-0x9f), the bidi characters and lone surrogates, each to its escape.
_TABLE = {c: _escape(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), *BIDI, *range(0xD800, 0xE000)]}
_TABLE.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})
# Multi-line text (a decoded document): newlines and tabs are its layout and stay; a bare CR is still escaped.
_TABLE_LINES = {c: e for c, e in _TABLE.items() if c not in (ord("\n"), ord("\t"))}


def shown(text: object, *, lines: bool = False) -> str:
    """`text` (str() of anything) with control characters, bidi overrides/isolates/marks and lone surrogates
    written as visible escapes. With `lines`, newlines and tabs are kept (text shown as several lines)."""
    return str(text).translate(_TABLE_LINES if lines else _TABLE)


def say(*parts: object, file=None) -> None:
    """print() of `shown` parts: one line on the terminal (standard output, or `file`)."""
    print(*(shown(p) for p in parts), file=file if file is not None else sys.stdout)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose error line shows what the user typed through `shown` ('unrecognized arguments:'
    echoes an argument as given, control characters included)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {shown(message)}\n")
