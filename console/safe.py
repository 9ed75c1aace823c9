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
import difflib
import re
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


def closest_flag(name: str, flags: list[str]) -> str | None:
    """The flag among `flags` that `name` (a mistyped --flag) most likely meant, or None. Compared without their
    leading dashes, which every flag shares: with them, `--ouput` came closer to `--kept` than to nothing."""
    bare = {f.lstrip("-"): f for f in flags}
    close = difflib.get_close_matches(name.lstrip("-"), list(bare), n=1)
    return bare[close[0]] if close else None


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser for every tokenmill command.

    Its error line shows what the user typed through `shown` ('unrecognized arguments:' echoes an argument as
    given, control characters included) and names the flag a mistyped one was meant to be: `--ouput x` left
    `--output` missing, and argparse said only "--output is required". Descriptions and epilogs keep their
    line breaks (RawDescriptionHelpFormatter), so a command's help can show example commands as written."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self._given: list[str] = []

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)  # for `error`'s suggestion
        return super().parse_known_args(args, namespace)

    def flags(self) -> list[str]:
        """Every long option string this parser knows."""
        return [s for action in self._actions for s in action.option_strings if s.startswith("--")]

    def mistyped(self, among: list[str] | None = None) -> tuple[str, str] | None:
        """(a flag the user gave that this parser does not know, the known flag it is closest to), the first such
        pair in the command line; `among` narrows the candidates (the flags an error is about). None without one.
        A prefix of a known flag is argparse's abbreviation, not a typo."""
        known = self.flags()
        candidates = among if among is not None else known
        for arg in self._given:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if not name.startswith("--") or name in known or any(k.startswith(name) for k in known):
                continue
            close = closest_flag(name, candidates)
            if close:
                return name, close
        return None

    def error(self, message: str):
        required = "the following arguments are required: "
        typo = None
        if message.startswith(required):  # a missing flag the user may have typed wrong
            missing = [f for item in message[len(required):].split(", ") for f in item.split("/")]
            typo = self.mistyped([f for f in missing if f.startswith("--")])
        elif message.startswith("unrecognized arguments: "):
            typo = self.mistyped()
        if typo:
            message = f"unknown flag {typo[0]}; did you mean {typo[1]}?"
        elif bad := re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)$", message):
            close = difflib.get_close_matches(bad.group(1), re.findall(r"'([^']*)'", bad.group(2)), n=1)
            if close:
                message = message.replace(" (choose from", f"; did you mean '{close[0]}'? (choose from", 1)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {shown(message)}\n")
