"""Rows the domain derives from the projections: images, prepull targets and the menu.

The domain (``worker.domain.images``, ``menu``) computes these from tags, policy and nodes;
this module maps its values to rows and replaces a repository's rows in a ledger
transaction, and reads them back as the domain's ``Offer`` with the ``Gating`` facts
(eligible nodes, holders per digest) from which ``changes.images_state`` says what the
spawner sees. The menu's radio entries other than the recommended image carry
``requires_prepulled``: they show only while every eligible node holds their digest, so the
menu follows prepulls without being recomputed (``dashboard.menu`` applies the same rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from attrs import astuple, fields, frozen
from sqlalchemy import Table

from worker.adapters.ledger import schema
from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.eventlog import LedgerTransaction
from worker.adapters.ledger.eventlog import log_head as read_log_head
from worker.adapters.ledger.layout import check_fields, column_list, names, qualified
from worker.adapters.ledger.statements import Sql, Statement, compose
from worker.domain.changes import Gating, MenuEntry, Offer, RepositoryKey
from worker.domain.images import ImageCollection, Repository
from worker.domain.menu import ImageCatalog
from worker.domain.messages import TaggedImage
from worker.domain.policy import DropdownPolicy

__all__ = [
    "ImageRow",
    "MenuRow",
    "PrepullTargetRow",
    "gating",
    "image_rows",
    "log_head",
    "menu_rows",
    "offer_of",
    "offers",
    "replace_images",
    "replace_menu",
    "replace_prepull_targets",
    "stored_rows",
    "target_rows",
]

T = TypeVar("T")


@frozen
class ImageRow:
    """One tag of a repository after alias resolution (``ledger.images``)."""

    tag: str
    digest: str | None
    image_type: str
    type_rank: int
    position: int
    display_name: str
    alias_target: str | None
    aliases: tuple[str, ...]
    is_primary: bool
    architecture: str | None
    size_bytes: int | None


@frozen
class PrepullTargetRow:
    """One image of the prepull set (``ledger.prepull_targets``); ``pull`` marks the one
    image per digest that prepull pods pull."""

    tag: str
    digest: str | None
    position: int
    reference: str
    display_name: str
    image_type: str
    size_bytes: int | None
    pull: bool


@frozen
class MenuRow:
    """One menu entry (``ledger.menu_entries``); ``section`` is ``radio`` or ``dropdown``."""

    section: str
    position: int
    tag: str
    digest: str | None
    reference: str
    display_name: str
    requires_prepulled: bool


def image_rows(collection: ImageCollection) -> list[ImageRow]:
    """Every image of a collection, in display order."""
    rows = []
    for position, image in enumerate(collection.images):
        primary = image.digest is not None and collection.image_for_digest(image.digest) is image
        rows.append(
            ImageRow(
                tag=image.tag,
                digest=image.digest,
                image_type=image.image_type.value,
                type_rank=image.image_type.rank,
                position=position,
                display_name=image.display_name,
                alias_target=image.alias_target,
                aliases=tuple(image.alias_names()),
                is_primary=primary,
                architecture=image.parsed.architecture,
                size_bytes=image.size,
            )
        )
    return rows


def target_rows(view: ImageCatalog) -> list[PrepullTargetRow]:
    """The prepull set as status lists it, with the images to pull marked."""
    pulled = {i.tag for i in view.prepull_set.digests().values()}
    return [
        PrepullTargetRow(
            tag=image.tag,
            digest=image.digest,
            position=position,
            reference=view.repository.reference(image.tag),
            display_name=image.display_name,
            image_type=image.image_type.value,
            size_bytes=image.size,
            pull=image.tag in pulled and not image.parsed.is_arch_specific,
        )
        for position, image in enumerate(view.status_images())
    ]


def menu_rows(view: ImageCatalog, dropdown: DropdownPolicy, now: datetime) -> list[MenuRow]:
    """The radio candidates (``ImageCatalog.radio_candidates``) and the dropdown."""
    rows = [
        MenuRow("radio", n, i.tag, i.digest, view.menu_entry(i).reference, i.display_name, needs)
        for n, (i, needs) in enumerate(view.radio_candidates())
    ]
    allowed = view.dropdown_images(dropdown, now)
    rows.extend(
        MenuRow("dropdown", n, i.tag, i.digest, view.menu_entry(i).reference, i.display_name, False)
        for n, i in enumerate(allowed)
    )
    return rows


_TABLES: dict[type[Any], Table] = {
    ImageRow: schema.images,
    PrepullTargetRow: schema.prepull_targets,
    MenuRow: schema.menu_entries,
}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    """The field names of a row class, in order (its table's columns after the key's
    registry and repository)."""
    return tuple(f.name for f in fields(cls))


for _cls, _table in _TABLES.items():
    check_fields(
        names(_table.columns), ("registry", "repository", *_field_names(_cls)), _cls.__name__
    )

_DELETE = {
    table: Statement(
        compose(
            Sql("DELETE FROM {{table}} WHERE registry = :registry AND repository = :repository"),
            table=qualified(table),
        )
    )
    for table in _TABLES.values()
}


_STORED = {
    cls: Statement(
        compose(
            Sql(
                "SELECT {{columns}} FROM {{table}}"
                " WHERE registry = :registry AND repository = :repository"
            ),
            columns=column_list(c for c in table.columns if c.name in _field_names(cls)),
            table=qualified(table),
        )
    )
    for cls, table in _TABLES.items()
}


async def stored_rows(tx: LedgerTransaction, repository: Repository, cls: type[T]) -> set[T]:
    """The repository's rows of a derived table (``ImageRow``, ``PrepullTargetRow`` or
    ``MenuRow``) as stored."""
    where = {"registry": repository.registry, "repository": repository.repository}
    async with translate_errors(f"read {qualified(_TABLES[cls]).text}"):
        records = await _STORED[cls].fetch(tx.driver, **where)
    return {cls(*(tuple(v) if isinstance(v, list) else v for v in r)) for r in records}


async def _replace(
    tx: LedgerTransaction, table: Table, repository: Repository, rows: Sequence[Any]
) -> None:
    db = tx.driver
    where = {"registry": repository.registry, "repository": repository.repository}
    async with translate_errors(f"replace {qualified(table).text}"):
        await _DELETE[table].execute(db, **where)
        if not rows:
            return
        records = [_record(repository, row) for row in rows]
        await db.copy_records_to_table(
            table.name,
            schema_name=table.schema,
            columns=list(names(table.columns)),
            records=records,
        )


def _record(repository: Repository, row: Any) -> tuple[Any, ...]:
    values = (repository.registry, repository.repository, *astuple(row, recurse=False))
    return tuple(list(v) if isinstance(v, tuple) else v for v in values)


async def replace_images(
    tx: LedgerTransaction, repository: Repository, rows: Sequence[ImageRow]
) -> None:
    """Replace the repository's rows of ``ledger.images``."""
    await _replace(tx, schema.images, repository, rows)


async def replace_prepull_targets(
    tx: LedgerTransaction, repository: Repository, rows: Sequence[PrepullTargetRow]
) -> None:
    """Replace the repository's rows of ``ledger.prepull_targets``."""
    await _replace(tx, schema.prepull_targets, repository, rows)


async def replace_menu(
    tx: LedgerTransaction, repository: Repository, rows: Sequence[MenuRow]
) -> None:
    """Replace the repository's rows of ``ledger.menu_entries``."""
    await _replace(tx, schema.menu_entries, repository, rows)


_ENTRIES = Statement(
    "SELECT registry, repository, section, tag, digest, requires_prepulled"
    " FROM ledger.menu_entries WHERE CAST(:registry AS text) IS NULL"
    " OR (registry = :registry AND repository = :repository)"
    " ORDER BY registry, repository, section, position, tag"
)
_TARGETS = Statement(
    "SELECT registry, repository, tag, digest FROM ledger.prepull_targets"
    " WHERE CAST(:registry AS text) IS NULL"
    " OR (registry = :registry AND repository = :repository)"
    " ORDER BY registry, repository, position, tag"
)
_ELIGIBLE = Statement("SELECT count(*) FROM ledger.nodes WHERE eligible AND gone_at IS NULL")
_HOLDERS = Statement(
    "SELECT digest, eligible_nodes FROM ledger.image_presence"
    " WHERE digest = ANY(CAST(:digests AS text[]))"
)


async def offers(
    tx: LedgerTransaction, repository: Repository | None = None
) -> dict[RepositoryKey, Offer]:
    """What the last refresh of each repository (or of one) stored as its offer: the menu
    entries and the prepull set (``ledger`` tables, not the public views)."""
    key = (repository.registry, repository.repository) if repository else (None, None)
    where = {"registry": key[0], "repository": key[1]}
    async with translate_errors("read the menu entries and the prepull set"):
        entries = await _ENTRIES.fetch(tx.driver, **where)
        targets = await _TARGETS.fetch(tx.driver, **where)
    found: dict[RepositoryKey, tuple[list[MenuEntry], list[TaggedImage]]] = {}
    for registry, name, section, tag, digest, gated in entries:
        found.setdefault((registry, name), ([], []))[0].append(
            MenuEntry(section, tag, digest, gated)
        )
    for registry, name, tag, digest in targets:
        found.setdefault((registry, name), ([], []))[1].append(TaggedImage(tag, digest))
    return {k: Offer(*k, tuple(e), tuple(t)) for k, (e, t) in found.items()}


def offer_of(
    repository: Repository, menu: Sequence[MenuRow], targets: Sequence[PrepullTargetRow]
) -> Offer:
    """The offer the rows a refresh is about to store make."""
    return Offer(
        repository.registry,
        repository.repository,
        tuple(MenuEntry(r.section, r.tag, r.digest, r.requires_prepulled) for r in menu),
        tuple(TaggedImage(r.tag, r.digest) for r in targets),
    )


async def gating(tx: LedgerTransaction, digests: Iterable[str]) -> Gating:
    """The eligible nodes and, for each digest, how many of them hold it, now."""
    wanted = sorted(set(digests))
    async with translate_errors("read image presence"):
        nodes = int(await _ELIGIBLE.fetchval(tx.driver))
        holders = await _HOLDERS.fetch(tx.driver, digests=wanted) if wanted else []
    return Gating(nodes, {digest: int(count) for digest, count in holders})


async def log_head(tx: LedgerTransaction) -> int:
    """The position of the last event, this transaction's appends included."""
    async with translate_errors("read the event log head"):
        return await read_log_head(tx.driver)
