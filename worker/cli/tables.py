"""Tables for people: drawn by rich on a terminal, plain aligned columns on a pipe."""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["Cell", "Columns", "cell_text", "print_table", "render_table", "short_digest", "yes_no"]

Cell = Callable[[str, Any], str]
"""How a value of a column is shown: ``cell(column, value) -> text``."""
Columns = Sequence[str] | Mapping[str, str]
"""The columns shown, as row keys (the key is the header) or row key -> header."""


def short_digest(digest: Any) -> str:
    """A digest shortened for tables (``sha256:`` and 12 hex digits)."""
    if not isinstance(digest, str):
        return ""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest


def yes_no(value: Any) -> str:
    """``yes`` / ``no`` for a truth value, nothing for an unknown one."""
    return "" if value is None else ("yes" if value else "no")


def cell_text(column: str, value: Any) -> str:
    """The usual text of a value: digests shortened (a column named ``*digest*``), truth
    values as yes/no, times to the second, lists joined by commas, nothing for null."""
    if value is None:
        return ""
    if "digest" in column and isinstance(value, str):
        return short_digest(value) if value.startswith("sha256:") else value
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _headers(columns: Columns) -> dict[str, str]:
    return dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}


def render_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Columns,
    *,
    cell: Cell = cell_text,
    terminal: bool = False,
    width: int | None = None,
) -> str:
    """The rows as a table: on a ``terminal``, rich's lines and bold headers fitted to
    ``width``; otherwise plain columns two spaces apart, never wrapped, no trailing blanks,
    no colour (for ``grep``, ``awk`` and logs)."""
    headers = _headers(columns)
    table = Table(
        box=box.SIMPLE_HEAD if terminal else None,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1) if terminal else (0, 2, 0, 0),
        header_style="bold" if terminal else "",
    )
    for header in headers.values():
        table.add_column(header, no_wrap=not terminal, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell(key, row.get(key))) for key in headers))
    out = io.StringIO()
    console = Console(
        file=out,
        width=width if terminal and width else 100_000,
        force_terminal=terminal,
        no_color=not terminal,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Columns,
    *,
    empty: str = "(nothing)",
    cell: Cell = cell_text,
) -> None:
    """Print the rows as a table on stdout (drawn when stdout is a terminal), or ``empty``."""
    if not rows:
        click.echo(empty)
        return
    stream = sys.stdout
    terminal = stream.isatty()
    width = shutil.get_terminal_size().columns if terminal else None
    click.echo(render_table(rows, columns, cell=cell, terminal=terminal, width=width))
