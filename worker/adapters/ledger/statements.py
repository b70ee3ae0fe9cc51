"""The ledger's SQL: ``.sql`` files of package data, composed from named parts, named parameters.

Files
    ``worker/adapters/ledger/sql/<module>/<name>.sql`` holds one statement, or one part of
    one, of the adapter module ``<module>``; ``load("<module>/<name>")`` reads it. The
    leading ``--`` lines of a file describe it and are dropped when it is read.

Parts
    ``{{slot}}`` (a lower-case name in double braces) marks where a named part goes;
    ``compose(template, slot=part, ...)`` fills every slot of a template. A slot left open,
    or a part that fits no slot, is an error. A part is ``Sql``: another file, a
    composition, text derived from the table objects (``worker.adapters.ledger.layout``),
    a name checked by ``identifier`` or constants quoted by ``literals``. A slot may stand
    several times; it gets the same part each time. Nothing else is ever spliced into SQL
    (no ``str.replace``, no ``format`` on SQL; values are parameters).

Parameters
    One style for the whole ledger: SQLAlchemy ``text()``'s named parameters, ``:name``,
    with casts written ``CAST(:name AS type)`` (``text()`` does not see ``:name::type`` as
    a parameter, so ``load`` refuses it, and asyncpg's ``$1`` too). Named rather than
    ``$n`` because the long statements are composed from parts: names say what a value is
    and survive composition, where positions would have to be renumbered whenever parts
    combine; and the statements that run on a SQLAlchemy connection already use them.
    The statements that run on a ledger transaction's own asyncpg connection (the hot
    path, where SQLAlchemy would add a millisecond and a half to each append) are compiled
    once, by SQLAlchemy's asyncpg dialect, to ``$n``: ``Statement`` keeps both forms and
    the names in order, and its calls take values by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from attrs import frozen
from sqlalchemy import TextClause, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from worker.domain.errors import ImageLedgerError

__all__ = [
    "SQL_FOLDER",
    "Sql",
    "SqlError",
    "Statement",
    "compose",
    "identifier",
    "join",
    "literals",
    "load",
    "statement",
]

SQL_FOLDER = "sql"
"""The package-data folder of this package that holds the ``.sql`` files."""

_SLOT = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
_NAME = re.compile(r"[a-z_][a-z0-9_]*(/[a-z_][a-z0-9_]*)*")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")
_CAST_PARAMETER = re.compile(r"(?<![:\w]):\w+::")
_POSITIONAL = re.compile(r"\$\d")
_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


class SqlError(ImageLedgerError):
    """A ``.sql`` file is missing or malformed, or a composition does not fit its template.

    A programming error, found when a module is imported or a statement first built.
    """


@frozen
class Sql:
    """SQL text, whole or a part, with ``{{slots}}`` and ``:named`` parameters."""

    text: str


def join(parts: Iterable[Sql], separator: str = ", ") -> Sql:
    """Parts one after the other (a column list, a WITH list)."""
    return Sql(separator.join(p.text for p in parts))


def identifier(name: str) -> Sql:
    """A table or column name (``schema.table`` allowed), checked to be a plain identifier."""
    if not _IDENTIFIER.fullmatch(name):
        raise SqlError(f"not a plain SQL identifier: {name!r}")
    return Sql(name)


def literals(values: Iterable[str]) -> Sql:
    """String constants as a comma-separated list of SQL literals (for ``IN (...)``)."""
    return join(Sql("'" + v.replace("'", "''") + "'") for v in values)


@cache
def load(name: str) -> Sql:
    """The SQL of ``sql/<name>.sql``, without its leading comment lines."""
    if not _NAME.fullmatch(name):
        raise SqlError(f"bad SQL file name {name!r}")
    *folders, last = name.split("/")
    path = files(__package__).joinpath(SQL_FOLDER, *folders, f"{last}.sql")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise SqlError(f"no SQL file {name}.sql") from exc
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    body = "\n".join(lines).strip()
    for pattern, what in ((_CAST_PARAMETER, ":name::type"), (_POSITIONAL, "$n")):
        if pattern.search(body):
            raise SqlError(f"{name}.sql: write parameters as :name and casts as CAST(), not {what}")
    return Sql(body)


def compose(template: Sql, **parts: Sql) -> Sql:
    """``template`` with each ``{{slot}}`` filled by the part of that name."""
    pieces = _SLOT.split(template.text)
    slots = set(pieces[1::2])
    if slots != parts.keys():
        raise SqlError(
            f"slots {sorted(slots)} of the template and parts {sorted(parts)} differ: "
            f"{template.text[:60]!r}..."
        )
    if any("{{" in p or "}}" in p for p in pieces[::2]):
        raise SqlError(f"a malformed slot in {template.text[:60]!r}...")
    return Sql("".join(parts[p].text if i % 2 else p for i, p in enumerate(pieces)))


class Statement:
    """A whole statement, for SQLAlchemy (``clause``) and for asyncpg (``sql``, ``$n``).

    ``params`` are the parameter names in the order of their positions; the asyncpg
    helpers take the values by name and check that each is given exactly once.
    """

    __slots__ = ("clause", "params", "source", "sql")

    def __init__(self, sql: Sql | str) -> None:
        if isinstance(sql, str):
            sql = Sql(sql)
        if _SLOT.search(sql.text):
            raise SqlError(f"a statement with open slots: {sql.text[:60]!r}...")
        self.source = sql.text
        self.clause: TextClause = text(sql.text)
        compiled = self.clause.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self.params: tuple[str, ...] = tuple(compiled.positiontup or ())

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values in the order of the positional parameters."""
        if values.keys() != set(self.params):
            raise TypeError(f"parameters {sorted(values)} given, {sorted(self.params)} wanted")
        return tuple(values[name] for name in self.params)

    async def fetch(self, db: Any, /, **values: Any) -> list[Any]:
        """The rows (``asyncpg.Record``) on an asyncpg connection."""
        return await db.fetch(self.sql, *self.args(values))  # type: ignore[no-any-return]

    async def fetchval(self, db: Any, /, **values: Any) -> Any:
        """The first column of the first row on an asyncpg connection."""
        return await db.fetchval(self.sql, *self.args(values))

    async def execute(self, db: Any, /, **values: Any) -> str:
        """Run on an asyncpg connection; returns the command status (``INSERT 0 3``)."""
        return await db.execute(self.sql, *self.args(values))  # type: ignore[no-any-return]


def statement(name: str, **parts: Sql) -> Statement:
    """The statement of file ``name``, its slots filled with ``parts``."""
    return Statement(compose(load(name), **parts))
