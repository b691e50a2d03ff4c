"""The rejects file of one import (``line,reason,<the row's fields>``, written only when a row is
rejected; where it goes: :func:`rejects_target`) and the file-level error of an import
(:class:`ImportFileError`). Part of the CSV import (``uptime.ingest.importer``)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

_REJECTS_HEADER_START = "line,reason"



class ImportFileError(Exception):
    """A whole file cannot be imported (missing file, missing column, not CSV, unwritable
    rejects file...). The message names the file and what is wrong; the CLI exits 2."""


class _Rejects:
    """Writes rejected rows lazily (the file only exists when a row was rejected).

    ``count``: rows written so far — the import's ``rejected`` (every rejected row is written
    here, so this is the one count of them)."""

    def __init__(self, target: Path, explicit: bool, header: list[str], input_path: Path) -> None:
        self.target = target
        self.explicit = explicit
        self.header = header
        self.input_path = input_path
        self.path: Path | None = None
        self.notes: list[str] = []
        self._file: io.TextIOWrapper | None = None
        self._writer: Any = None
        self.count = 0

    def _open(self) -> None:
        try:
            if self.target.resolve() == self.input_path.resolve():
                raise ImportFileError(f"the rejects file {self.target} would overwrite the input")
            if not self.explicit and _read_only_dir(self.target.parent):
                raise PermissionError(self.target.parent)
            self._file = open(
                self.target, "w", encoding="utf-8", errors="surrogateescape", newline=""
            )
            self.path = self.target
        except PermissionError:
            if self.explicit:
                raise ImportFileError(f"cannot write the rejects file {self.target}") from None
            fallback = Path.cwd() / self.target.name
            try:
                self._file = open(
                    fallback, "w", encoding="utf-8", errors="surrogateescape", newline=""
                )
            except OSError as exc:
                raise ImportFileError(
                    f"cannot write the rejects file {self.target} nor {fallback}: {exc}; "
                    "pass --rejects DIR"
                ) from None
            self.path = fallback
            self.notes.append(
                f"{self.target.parent} is not writable; rejects written to {fallback}"
            )
        except OSError as exc:
            raise ImportFileError(f"cannot write the rejects file {self.target}: {exc}") from None
        # CRLF line ends (RFC 4180): the writer then quotes any field holding a CR or an LF.
        self._writer = csv.writer(self._file, lineterminator="\r\n")
        self._writer.writerow(["line", "reason", *self.header])

    def write(self, line: int, reason: str, row: list[str]) -> None:
        if self._writer is None:
            self._open()
        self._writer.writerow([line, reason, *row])
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        elif self.target.is_file():
            # A rejects file left by an earlier run of the same input would mislead: remove it
            # (only if it is one of ours).
            try:
                with open(self.target, encoding="utf-8", errors="replace") as f:
                    ours = f.readline().startswith(_REJECTS_HEADER_START)
                if ours:
                    self.target.unlink()
            except OSError:
                pass


def _read_only_dir(directory: Path) -> bool:
    """True when ``directory`` has no write permission bit at all (a read-only data folder;
    checked on the mode bits because root may write anyway)."""
    try:
        return not (directory.stat().st_mode & 0o222) or not os.access(directory, os.W_OK)
    except OSError:
        return False


def rejects_target(
    input_path: Path, kind: str, rejects: Path | None, several: bool
) -> tuple[Path, bool]:
    """Where the rejects of ``input_path`` go, and whether the user chose it.

    * ``rejects`` unset: ``<input>.rejects.csv`` next to the input (if that folder is
      read-only: ``./<input name>.rejects.csv`` in the current directory).
    * ``rejects`` an existing directory (or ending in ``/``): ``<dir>/<input name>.rejects.csv``.
    * otherwise a file: used as is for a single input file; with several inputs the kind is
      inserted before the suffix (``bad.csv`` -> ``bad.status.csv``, ``bad.hours.csv``).
    """
    if rejects is None:
        return input_path.with_name(input_path.name + ".rejects.csv"), False
    if rejects.is_dir() or str(rejects).endswith(("/", os.sep)):
        return rejects / (input_path.name + ".rejects.csv"), True
    if not several:
        return rejects, True
    return rejects.with_name(f"{rejects.stem}.{kind}{rejects.suffix or '.csv'}"), True


