"""The report CSV's cell rules: no formula a spreadsheet would evaluate, no cell a reader could
split into two lines, and an exact way back to the store id.

Spec: issue 9 items 7 (formula injection) and 8 (control characters in ids).

* **Formulas (OWASP "CSV injection").** A ``store_id`` starting with ``=`` ``+`` ``-`` ``@``,
  a tab or a carriage return is written with a ``'`` in front (``=1+2`` → ``'=1+2``), so
  Excel, LibreOffice and Google Sheets show it as text. An id that itself starts with ``'``
  gets one more ``'`` (``'x`` → ``''x``). **Recovering the exact id** (for programs): if the
  cell starts with ``'``, remove that one character (:func:`unprotect`); nothing else changes.
  Numbers are never prefixed (they are our own ``12.34`` values).
* **Quoting.** A cell is quoted (``"..."``, inner ``"`` doubled, RFC 4180) when it contains a
  comma, a ``"``, or anything a reader may take for a line end: LF, CR, VT, FF, U+001C..1E,
  U+0085, U+2028, U+2029 (Python's ``str.splitlines`` set, which covers old Mac CR line ends).
  The report itself never has such ids (they are ignored, item 8), but the rule holds for any
  cell.

Lines end with ``\\n``; the text is UTF-8.
"""

from __future__ import annotations

from collections.abc import Iterable

#: First characters that make a spreadsheet read a cell as a formula (OWASP), plus ``'``
#: itself so that the prefix can always be removed again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_QUOTE_IF = frozenset(',"\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029')


def protect(cell: str) -> str:
    """``cell`` with a ``'`` in front if it starts with one of :data:`FORMULA_STARTS`."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def unprotect(cell: str) -> str:
    """The exact value behind a :func:`protect`-ed cell: drop one leading ``'``."""
    return cell[1:] if cell.startswith("'") else cell


def quote(cell: str) -> str:
    """``cell`` as a CSV field: quoted when it holds a comma, a quote or a line-end character."""
    if _QUOTE_IF.isdisjoint(cell):
        return cell
    return '"' + cell.replace('"', '""') + '"'


def line(cells: Iterable[str]) -> str:
    """One CSV line (``\\n``-terminated) of already formatted cells."""
    return ",".join(quote(c) for c in cells) + "\n"
