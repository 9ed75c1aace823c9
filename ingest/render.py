"""The text of trafilatura's result tree: comments where `trafilatura.extract` puts them, layout tables as blocks.

`trafilatura.bare_extraction` returns the main content as a tree (`body`) and the comments as a second tree
(`commentsbody`, only when comments are asked for). `trafilatura.extract` writes both with `xml.xmltotxt`: the
body, then the comments on the next line, stripped and NFC-normalized. `document_text` does the same, so
`include_comments = true` puts the comments in the text as it does with trafilatura (bare_extraction's `text`
field holds the body alone).

Why tables differ. trafilatura 2.x writes every table row as one GFM line, `| cell | cell |`, and folds what a
cell holds (paragraphs, line breaks, lists) into that line. That suits a data table. On a page laid out with a
table (message boards, old sites, kuro5hin-style layouts) a cell holds a whole post or article, whose paragraphs
become one line ending in `|`: the text loses its paragraphs, and FineWeb's line rule (at least 12 % of lines end
in punctuation) drops the page. trafilatura 1.11, which built FineWeb, kept such a cell's paragraphs on lines of
their own where its tree had no table there, and wrote one line per row where it had. A table one of whose
cells holds a block (a paragraph, heading, list, quote, code block, line break or another table) is page layout:
- `table_text = "blocks"` (every built-in recipe) writes it as the page would read without the table: each
  cell's blocks on their own lines, a cell of inline text on a line of its own;
- `"rows"` writes it as trafilatura 1.11 did: one line per row, cells joined by " | ", a cell's paragraphs
  joined by spaces and its line breaks kept;
- `"markdown"` keeps trafilatura 2's rows.
A table whose cells are all inline text is a data table and keeps trafilatura 2's rows in every mode. The
figures behind the default are beside `ExtractConfig.table_text` in schemas/recipe.py.
"""

from __future__ import annotations

import unicodedata
from copy import deepcopy
from typing import Any

# Children that make a cell a piece of page layout rather than a table value. `div` is what a nested layout
# table became once written as blocks (tables are rewritten innermost first).
_BLOCK_TAGS = frozenset({"p", "head", "list", "quote", "code", "lb", "table", "div"})


def _own_cells(table: Any) -> list[Any]:
    """The table's cells in document order, without those of tables nested in it. `table` may also be a row
    that trafilatura left outside any table (it does so for some layout tables); it is treated as a table of
    its own."""
    tag = ("table",) if table.tag == "table" else ("table", "row")
    return [cell for cell in table.iter("cell") if next(cell.iterancestors(*tag), None) is table]


def _tables(body: Any) -> list[Any]:
    """The tables of a result tree and the rows it holds outside any table, innermost first (reverse document
    order), so that a table nested in a cell is rewritten before the cell is looked at."""
    found = [e for e in body.iter("table", "row")
             if e.tag == "table" or next(e.iterancestors("table"), None) is None]
    return found[::-1]


def is_layout_table(table: Any) -> bool:
    """Whether a cell of the table holds a block element (see the module docstring)."""
    return any(child.tag in _BLOCK_TAGS for cell in _own_cells(table) for child in cell)


# Elements that trafilatura writes on a line of their own.
_LINE_STARTS = frozenset({"p", "head", "list", "item", "quote", "div", "table"})


def _folded(text: str | None) -> str | None:
    """Runs of whitespace as one space, a leading and a trailing one kept."""
    if not text:
        return text
    inner = " ".join(text.split())
    if not inner:
        return " "
    return (" " if text[0].isspace() else "") + inner + (" " if text[-1].isspace() else "")


def _fold_spaces(cell: Any) -> None:
    """Fold the whitespace of a layout cell's text as trafilatura folds a paragraph's (a cell's text keeps the
    page's indentation and line breaks, which trafilatura 2 only ever writes onto one row line); code blocks keep
    theirs."""
    for element in cell.iter():
        if element.tag != "code" and next(element.iterancestors("code"), None) is None:
            element.text = _folded(element.text)
            if element is cell or element.tag in _LINE_STARTS:  # its text starts a line
                element.text = element.text and element.text.lstrip()
        if element is not cell:
            element.tail = _folded(element.tail)
            if element.tag in _LINE_STARTS or element.tag == "lb":  # text after a block or a break starts a line
                element.tail = element.tail and element.tail.lstrip()


def _replace_layout_tables(body: Any, elements_for: Any) -> Any:
    """A copy of `body` in which every layout table (and row left outside a table) is replaced by the elements
    `elements_for(table)` returns, its non-blank tail kept as a paragraph after them; innermost first, so a table
    nested in a cell is rewritten before the cell is looked at. The tree given is not changed."""
    if not any(is_layout_table(table) for table in _tables(body)):  # most pages: no copy, no walk
        return body
    body = deepcopy(body)
    for table in _tables(body):
        parent = table.getparent()
        if parent is None or not is_layout_table(table):
            continue
        replacement = elements_for(table)
        if (table.tail or "").strip():
            tail = table.makeelement("p", {})
            tail.text = table.tail
            replacement.append(tail)
        index = parent.index(table)
        parent.remove(table)
        for offset, element in enumerate(replacement):
            parent.insert(index + offset, element)
    return body


def _cells_as_blocks(table: Any) -> list[Any]:
    """A layout table's cells as the page reads them: a cell holding blocks becomes a `div` (its blocks keep their
    own lines), a cell of inline text a `p`, an empty cell nothing."""
    out = []
    for cell in _own_cells(table):
        if len(cell) == 0 and not (cell.text or "").strip():
            continue
        cell.tag = "div" if any(child.tag in _BLOCK_TAGS for child in cell) else "p"
        cell.attrib.clear()
        cell.tail = None
        _fold_spaces(cell)
        out.append(cell)
    return out


def tables_as_blocks(body: Any) -> Any:
    """trafilatura's result tree with every layout table written as blocks (`_cells_as_blocks`)."""
    return _replace_layout_tables(body, _cells_as_blocks)


# Elements whose text trafilatura writes as a block of its own; inside a row written as one line ("rows") they
# are joined by a space, as trafilatura 1.11 joined them.
_BLOCKISH = frozenset({"p", "head", "list", "item", "quote", "code", "div", "table", "row"})


def _row_as_line(row: Any) -> Any:
    """A `p` holding one table row as trafilatura 1.11 wrote it: the cells' text joined by " | " and ended by
    "|", a cell's paragraphs joined by a space, its line breaks kept as line breaks."""
    lines: list[list[str]] = [[]]

    def walk(element: Any, top: bool = False) -> None:
        if element.tag == "lb":
            lines.append([])
        else:
            if element.tag in _BLOCKISH:
                lines[-1].append(" ")
            lines[-1].append(element.text or "")
            for child in element:
                walk(child)
            if element.tag in _BLOCKISH:
                lines[-1].append(" ")
        if not top:
            lines[-1].append(element.tail or "")

    for cell in row.iterchildren("cell"):
        walk(cell, top=True)
        lines[-1].append(" | ")
    texts = [" ".join("".join(parts).split()) for parts in lines]
    line = row.makeelement("p", {})
    line.text = texts[0]
    for text in texts[1:]:
        brk = row.makeelement("lb", {})
        brk.tail = text
        line.append(brk)
    return line


def tables_as_rows(body: Any) -> Any:
    """trafilatura's result tree with every layout table one line per row, as trafilatura 1.11 wrote it
    (`_row_as_line`)."""
    def rows_of(table: Any) -> list[Any]:
        rows = [table] if table.tag == "row" else [
            row for row in table.iter("row") if next(row.iterancestors("table"), None) is table]
        return [_row_as_line(row) for row in rows]

    return _replace_layout_tables(body, rows_of)


_REWRITE = {"blocks": tables_as_blocks, "rows": tables_as_rows, "markdown": lambda body: body}


def document_text(body: Any, commentsbody: Any, table_text: str = "blocks") -> str:
    """The text `trafilatura.extract(..., output_format="txt")` returns for this result, tables as `table_text`
    says: the body, then the comments (None when they were not asked for) on the next line, stripped, NFC; and
    no line ends in whitespace or is blank."""
    from trafilatura.xml import xmltotxt

    def text_of(tree: Any) -> str:
        if tree is None:
            return ""
        return xmltotxt(_REWRITE[table_text](tree), False)

    text = text_of(body)
    if commentsbody is not None:
        text = f"{text}\n{text_of(commentsbody)}".strip()
    # Lines end where their text ends. trafilatura 2 keeps the spaces before a line break (16 % of the lines of
    # 300 trafilatura_eval pages end in one), which carry nothing and hide a line's last character from every
    # line rule ("suffering. " does not end in "."); trafilatura 1.11 trimmed its lines. Leading whitespace
    # stays: it is a code block's indentation. Lines of whitespace alone go, as trafilatura drops empty lines.
    text = "\n".join(line.rstrip() for line in text.split("\n") if line.strip())
    return unicodedata.normalize("NFC", text)
