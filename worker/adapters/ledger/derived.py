"""Rows the domain derives from the projections: images, prepull targets and the menu.

The domain (``worker.domain.images``, ``menu``) computes these from tags, policy and nodes;
this module maps its values to rows and replaces a repository's rows in a ledger
transaction, and reads back what the spawner sees of them (``images_states``). The menu's
radio entries other than the recommended image carry ``requires_prepulled``:
``dashboard.menu`` shows them only while every eligible node holds their digest (from
``ledger.image_presence``), so the menu follows prepulls without being recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from attrs import astuple, fields, frozen
from sqlalchemy import Table

from worker.adapters.ledger import schema
from worker.adapters.ledger.database import translate_errors
from worker.adapters.ledger.eventlog import LedgerTransaction
from worker.adapters.ledger.eventlog import log_head as read_log_head
from worker.adapters.ledger.layout import check_fields, names, qualified
from worker.adapters.ledger.statements import Sql, Statement, compose, statement
from worker.domain.changes import ImagesState, RepositoryKey
from worker.domain.images import ImageCollection, Repository
from worker.domain.menu import ImageCatalog
from worker.domain.messages import TaggedImage
from worker.domain.policy import DropdownPolicy

__all__ = [
    "ImageRow",
    "MenuRow",
    "PrepullTargetRow",
    "image_rows",
    "images_states",
    "log_head",
    "menu_rows",
    "replace_images",
    "replace_menu",
    "replace_prepull_targets",
    "target_rows",
]


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
for _cls, _table in _TABLES.items():
    _fields = ("registry", "repository", *(f.name for f in fields(_cls)))
    check_fields(names(_table.columns), _fields, _cls.__name__)

_DELETE = {
    table: Statement(
        compose(
            Sql("DELETE FROM {{table}} WHERE registry = :registry AND repository = :repository"),
            table=qualified(table),
        )
    )
    for table in _TABLES.values()
}


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


_WITH_DROPDOWN = statement("derived/images_states", sections=Sql(""))
_WITHOUT_DROPDOWN = statement("derived/images_states", sections=Sql("WHERE section = 'radio'"))


async def images_states(
    tx: LedgerTransaction, repository: Repository | None = None, *, dropdown: bool = True
) -> dict[RepositoryKey, ImagesState]:
    """What the spawner sees of each repository (or of one) right now, in this
    transaction: the radio entries ``dashboard.menu`` shows, its dropdown (left empty
    with ``dropdown`` false: only refreshes change it), the prepull targets and the
    recommended image."""
    key = (repository.registry, repository.repository) if repository else (None, None)
    states = _WITH_DROPDOWN if dropdown else _WITHOUT_DROPDOWN
    async with translate_errors("read the menu and the prepull set"):
        records = await states.fetch(tx.driver, registry=key[0], repository=key[1])
    lists: dict[RepositoryKey, dict[str, list[TaggedImage]]] = {}
    for registry, name, kind, tag, digest in records:
        lists.setdefault((registry, name), {}).setdefault(kind, []).append(TaggedImage(tag, digest))
    return {
        key: ImagesState(
            *key,
            menu=tuple(kinds.get("radio", ())),
            dropdown=tuple(kinds.get("dropdown", ())),
            prepull=tuple(kinds.get("prepull", ())),
            recommended=next(iter(kinds.get("recommended", ())), None),
        )
        for key, kinds in lists.items()
    }


async def log_head(tx: LedgerTransaction) -> int:
    """The position of the last event, this transaction's appends included."""
    async with translate_errors("read the event log head"):
        return await read_log_head(tx.driver)
