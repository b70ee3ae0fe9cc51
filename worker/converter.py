"""The one cattrs converter: the only place where bytes and dicts become objects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import cattrs
from attrs import frozen
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter as make_json_converter

from worker.domain.durations import parse_duration
from worker.domain.errors import MessageRejected
from worker.domain.images import Image, Repository, TagEntry
from worker.domain.menu import (
    MenuImages,
    NodeImage,
    NodeStatus,
    PrepullerImages,
    SpawnerImage,
    SpawnerImages,
)
from worker.domain.messages import (
    INBOUND_MESSAGES,
    MAX_MESSAGE_BYTES,
    OUTBOUND_MESSAGES,
    InboundMessage,
    InvalidFieldError,
    OutboundMessage,
)
from worker.domain.nodes import KubeletImage, Node, Taint, cached_digests
from worker.domain.references import DockerReference
from worker.domain.refresh import RemovalLimit
from worker.domain.spawner import ResolvedImage

__all__ = ["ValidationError", "converter", "describe_error", "make_converter", "structure"]

if TYPE_CHECKING:
    from worker.config import ImagesConfig

T = TypeVar("T")


class ValidationError(ValueError):
    """Input that does not fit its schema; the message names the bad key path."""


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise TypeError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _structure_timedelta(value: Any, _: type) -> timedelta:
    if isinstance(value, bool):
        raise TypeError("expected a duration, got a boolean")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        return parse_duration(value)
    raise TypeError(f"expected a duration such as '5m', got {type(value).__name__}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


def _structure_removal_limit(value: Any, _: type) -> RemovalLimit:
    """``images.maxRemovalsUnconfirmed``: a number of tags, or a share such as ``10%``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return RemovalLimit(count=value)
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            percent = -1.0
        if 0 <= percent <= 100:
            return RemovalLimit(percent=percent)
    raise ValueError(f"expected a number of tags or a percentage such as '10%', got {value!r}")


def make_converter(*, camel_case: bool = False) -> cattrs.Converter:
    """Build a strict converter: unknown keys rejected, aware datetimes required.

    ``camel_case`` gives the YAML converter, where the classes named by ``use_camel_case``
    take camelCase keys; events and messages always use the snake_case converter, so their
    stored shape never depends on what else was imported.
    """
    conv = make_json_converter(forbid_extra_keys=True, prefer_attrib_converters=False)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, lambda d: d.isoformat())
    conv.register_structure_hook(timedelta, _structure_timedelta)
    conv.register_unstructure_hook(timedelta, lambda d: d.total_seconds())
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(RemovalLimit, _structure_removal_limit)
    _register_inputs(conv)
    if camel_case:
        _register_camel_case(conv)
        return conv
    _register_events(conv)
    _register_messages(conv)
    return conv


def camel_case(name: str) -> str:
    """``num_weeklies`` -> ``numWeeklies``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_CAMEL_CASE: set[type] = set()


def use_camel_case(*classes: type) -> None:
    """Read and write these attrs classes with camelCase keys (the reference's YAML).

    Hooks are generated lazily on first use, so registration order does not matter.
    """
    _CAMEL_CASE.update(classes)


def _camel_renames(cls: type) -> dict[str, Any]:
    return {
        a.name: override(rename=camel_case(a.name))
        for a in attrs.fields(cls)
        if not a.name.startswith("_")
    }


def _register_camel_case(conv: cattrs.Converter) -> None:
    def structure_factory(cls: type) -> Any:
        return make_dict_structure_fn(
            cls, conv, _cattrs_forbid_extra_keys=True, **_camel_renames(cls)
        )

    def unstructure_factory(cls: type) -> Any:
        return make_dict_unstructure_fn(cls, conv, **_camel_renames(cls))

    conv.register_structure_hook_factory(lambda t: t in _CAMEL_CASE, structure_factory)
    conv.register_unstructure_hook_factory(lambda t: t in _CAMEL_CASE, unstructure_factory)


def _register_events(conv: cattrs.Converter) -> None:
    """Events as a tagged union: ``{"type": name, "version": n, "data": {...}}``.

    ``conv.unstructure(event, Event)`` gives the tagged form stored in ``ledger.events``
    (``type``, ``version`` and ``data`` columns); ``conv.structure(tagged, Event)`` reads it
    back, upgrading an older payload first (``worker.event_upgrades``). A plain
    ``conv.unstructure(event)`` gives just the payload.
    """
    from worker.domain.events import EVENT_CLASSES, Event
    from worker.event_upgrades import upgrade_payload

    by_name = {cls.TYPE: cls for cls in EVENT_CLASSES}
    envelope_keys = frozenset(("type", "version", "data"))

    def structure_event(value: Any, _: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an event object, got {type(value).__name__}")
        if set(value) != envelope_keys:
            raise ValueError(
                f"an event has exactly the keys type, version, data; got {sorted(value)}"
            )
        name, version, data = value["type"], value["version"], value["data"]
        cls = by_name.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(f"unknown event type {name!r}")
        if isinstance(version, bool) or not isinstance(version, int):
            raise TypeError(f"event version must be an integer, got {version!r}")
        if not isinstance(data, dict):
            raise TypeError(f"event data must be an object, got {type(data).__name__}")
        return conv.structure(upgrade_payload(name, version, data, cls.VERSION), cls)

    def unstructure_event(event: Any) -> dict[str, Any]:
        cls = type(event)
        return {"type": cls.TYPE, "version": cls.VERSION, "data": conv.unstructure(event, cls)}

    conv.register_structure_hook_func(lambda t: t == Event, structure_event)
    conv.register_unstructure_hook_func(lambda t: t == Event, unstructure_event)


def _register_messages(conv: cattrs.Converter) -> None:
    """Message bodies: references as strings, Kubernetes' ``sizeBytes`` in node images."""

    def structure_reference(value: Any, _: type) -> DockerReference:
        if not isinstance(value, str):
            raise TypeError(f"expected a reference string, got {type(value).__name__}")
        return DockerReference.parse(value)

    conv.register_structure_hook(DockerReference, structure_reference)
    conv.register_unstructure_hook(DockerReference, str)
    size = override(rename="sizeBytes")
    conv.register_structure_hook(
        KubeletImage,
        make_dict_structure_fn(KubeletImage, conv, _cattrs_forbid_extra_keys=True, size_bytes=size),
    )
    conv.register_unstructure_hook(
        KubeletImage, make_dict_unstructure_fn(KubeletImage, conv, size_bytes=size)
    )


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, TypeError | ValueError) and not isinstance(exc, cattrs.BaseValidationError):
        message = str(exc)
        if message and "__init__()" not in message and "missing" not in message:
            return message
    return cattrs.v.format_exception(exc, type_)


def _camel_path(line: str) -> str:
    message, sep, path = line.rpartition(" @ ")
    if not sep:
        return line
    parts = [camel_case(p) if p and p[0].isalpha() else p for p in path.split(".")]
    return f"{message} @ {'.'.join(parts)}"


def describe_error(exc: BaseException, *, camel: bool = False) -> str:
    """One readable line per problem, each naming the key path (camelCase for YAML)."""
    if isinstance(exc, cattrs.BaseValidationError):
        lines = cattrs.transform_error(exc, path="$", format_exception=_format_exception)
        return "; ".join(_camel_path(x) if camel else x for x in lines)
    return str(exc)


# --------------------------------------------------------------------------- input files


@frozen
class GarImage:
    """One entry of an Artifact Registry ``ListDockerImages`` answer."""

    uri: str
    tags: tuple[str, ...] = ()
    name: str | None = None
    image_size_bytes: int | None = None
    upload_time: str | None = None
    media_type: str | None = None
    build_time: str | None = None
    update_time: str | None = None


@frozen
class NodeFileImage:
    """One ``node.status.images`` entry (``size_bytes`` or Kubernetes' ``sizeBytes``)."""

    names: tuple[str, ...] = ()
    size_bytes: int | None = None


@frozen
class NodeFileEntry:
    """A node in a nodes file: cached images, labels and taints."""

    images: tuple[NodeFileImage, ...] = ()
    labels: dict[str, str] = attrs.field(factory=dict)
    taints: tuple[Taint, ...] = ()


def _register_inputs(conv: cattrs.Converter) -> None:
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], _string_tuple)
    generated = make_dict_structure_fn(NodeFileImage, conv, _cattrs_forbid_extra_keys=True)

    def node_image(value: Any, cls: type) -> NodeFileImage:
        if isinstance(value, dict) and "sizeBytes" in value and "size_bytes" not in value:
            value = {("size_bytes" if k == "sizeBytes" else k): v for k, v in value.items()}
        return generated(value, cls)

    conv.register_structure_hook(NodeFileImage, node_image)


def _string_tuple(value: Any, _: type) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


def tag_entries(data: Any, repository: Repository, what: str = "tags") -> list[TagEntry]:
    """Tags from ``{tag: digest-or-null}`` or an Artifact Registry listing.

    A listing keeps only the entries of ``repository`` (a GAR repository can hold several
    images); each (entry, tag) pair becomes one tag with the entry's digest and size.
    """
    if isinstance(data, dict):
        entries = structure(data, dict[str, str | None], what)
        return [TagEntry(tag, digest) for tag, digest in entries.items()]
    if isinstance(data, list):
        listing = structure(data, list[GarImage], what)
        out: list[TagEntry] = []
        for item in listing:
            name, _, digest = item.uri.partition("@")
            if name != str(repository) or not digest:
                continue
            out.extend(TagEntry(tag, digest, item.image_size_bytes) for tag in item.tags)
        return out
    raise ValidationError(
        f"invalid {what}: expected an object of tag -> digest or an Artifact Registry listing"
    )


def nodes_from_file(data: Any, what: str = "nodes") -> list[Node]:
    """Nodes from ``{name: {images, labels, taints}}`` (the conformance nodes format)."""
    entries = structure(data, dict[str, NodeFileEntry], what)
    return [
        Node(
            name=name,
            labels=entry.labels,
            taints=entry.taints,
            digests=cached_digests(KubeletImage(i.names, i.size_bytes) for i in entry.images),
        )
        for name, entry in entries.items()
    ]


converter = make_converter()
"""Events, messages, input files: snake_case keys."""
config_converter = make_converter(camel_case=True)
"""The configuration's YAML: camelCase keys, as the reference writes them."""


def structure(data: Any, cls: type[T], what: str = "input", *, camel: bool = False) -> T:
    """Structure ``data`` as ``cls``; raise ValidationError naming every bad path.

    ``camel`` uses the configuration converter and names paths in camelCase.
    """
    try:
        return (config_converter if camel else converter).structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise ValidationError(f"invalid {what}: {describe_error(exc, camel=camel)}") from exc


# --------------------------------------------------------------------------- output shapes


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def spawner_image_json(image: SpawnerImage) -> dict[str, Any]:
    """The reference's ``PrepulledImage`` (null fields omitted)."""
    return _drop_none(
        {
            "reference": image.reference,
            "tag": image.tag,
            "name": image.name,
            "digest": image.digest,
            "aliases": list(image.aliases),
            "prepulled": image.prepulled,
        }
    )


def spawner_images_json(images: SpawnerImages) -> dict[str, Any]:
    """``GET /spawner/v1/images`` (reference 7.2; null fields omitted)."""
    named = {
        "recommended": images.recommended,
        "latest_weekly": images.latest_weekly,
        "latest_daily": images.latest_daily,
        "latest_release": images.latest_release,
    }
    out = {k: spawner_image_json(v) for k, v in named.items() if v is not None}
    return {**out, "all": [spawner_image_json(i) for i in images.all]}


def menu_json(menu: MenuImages) -> dict[str, Any]:
    """The spawner menu: radio ``menu`` entries and ``dropdown`` entries."""
    return {
        "menu": [{"reference": e.reference, "name": e.name} for e in menu.menu],
        "dropdown": [{"reference": e.reference, "name": e.name} for e in menu.dropdown],
    }


def prepuller_config_json(images: ImagesConfig) -> dict[str, Any]:
    """The reference's ``PrepullerOptions`` in snake_case (credentials path omitted)."""
    source = images.source
    if source.type == "google":
        source_json: dict[str, Any] = {
            "type": "google",
            "location": source.location,
            "project_id": source.project_id,
            "repository": source.repository,
            "image": source.image,
        }
    else:
        source_json = {
            "type": "docker",
            "registry": source.registry,
            "repository": source.repository,
        }
    return {
        "source": source_json,
        "refresh_interval": images.refresh_interval.total_seconds(),
        "prepull_timeout": images.prepull_timeout.total_seconds(),
        "recommended_tag": images.recommended_tag,
        "num_releases": images.num_releases,
        "num_weeklies": images.num_weeklies,
        "num_dailies": images.num_dailies,
        "cycle": images.cycle,
        "pin": list(images.pin),
        "alias_tags": list(images.alias_tags),
    }


def prepuller_status_json(
    images_config: ImagesConfig, images: PrepullerImages, nodes: Sequence[NodeStatus]
) -> dict[str, Any]:
    """``GET /spawner/v1/prepulls`` (reference 7.1)."""

    def node_image(item: NodeImage) -> dict[str, Any]:
        return {
            "reference": item.reference,
            "tag": item.tag,
            "name": item.name,
            "digest": item.digest,
            "size": item.size,
            "nodes": list(item.nodes),
            "missing": list(item.missing),
        }

    return {
        "config": prepuller_config_json(images_config),
        "images": {
            "prepulled": [node_image(i) for i in images.prepulled],
            "pending": [node_image(i) for i in images.pending],
        },
        "nodes": [
            {"name": n.name, "eligible": n.eligible, "comment": n.comment, "cached": list(n.cached)}
            for n in nodes
        ],
    }


def resolved_image_json(image: ResolvedImage) -> dict[str, Any]:
    """A resolved image: the ``PrepulledImage`` shape plus ``reference_with_digest``."""
    return {
        "reference": image.reference,
        "tag": image.tag,
        "name": image.name,
        "digest": image.digest,
        "aliases": list(image.aliases),
        "prepulled": image.prepulled,
        "reference_with_digest": image.reference_with_digest,
    }


def view_node(name: str, labels: Any, taints: Any, digests: dict[str, int | None]) -> Node:
    """A node from the ``dashboard.nodes`` row (labels and taints as JSON) and its digests."""
    return Node(
        name=name,
        labels=structure(labels or {}, dict[str, str], f"labels of node {name}"),
        taints=structure(taints or [], tuple[Taint, ...], f"taints of node {name}"),
        digests=digests,
    )


def tag_json(image: Image) -> dict[str, Any]:
    """One tag as ``evaluate --output tags`` prints it."""
    parsed = image.parsed
    version = parsed.version
    return {
        "tag": image.tag,
        "type": parsed.image_type.value,
        "display_name": parsed.display_name,
        "version": str(version) if version else None,
        "cycle": parsed.cycle,
        "cycle_build": parsed.cycle_build,
        "build": parsed.build,
        "extra": parsed.extra,
        "architecture": parsed.architecture,
        "date": parsed.date.date().isoformat() if parsed.date else None,
        "digest": image.digest,
        "alias_target": image.alias_target,
        "aliases": image.alias_names(),
    }


# --------------------------------------------------------------------------- messages


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    kinds |= {float: "a number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _message_error(exc: BaseException) -> str:
    if isinstance(exc, cattrs.ClassValidationError):
        own = [e for e in exc.exceptions if isinstance(e, InvalidFieldError)]
        if own:
            return "; ".join(f"{e.problem} @ $.{e.field}" for e in own)
    return describe_error(exc).replace(".size_bytes", ".sizeBytes")


def _decode(cls: type[T], body: bytes, conv: cattrs.Converter) -> T:
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageRejected(
            f"body of {len(body)} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes"
        )
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise MessageRejected(f"malformed JSON: {detail}") from exc
    if not isinstance(data, dict):
        raise MessageRejected(f"expected a JSON object, got {_json_kind(data)} @ $")
    try:
        return conv.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise MessageRejected(" ".join(_message_error(exc).splitlines())) from exc


def decode_message(
    routing_key: str, body: bytes, conv: cattrs.Converter | None = None
) -> InboundMessage:
    """Decode and validate an inbound message; raise MessageRejected naming the problem.

    Rejected: unknown routing keys, bodies over 1 MiB, malformed JSON (including NaN and
    duplicate keys), non-object bodies, unknown fields, wrong types, timestamps without a
    zone, bad references and references without a digest where one is required.
    """
    cls = INBOUND_MESSAGES.get(routing_key)
    if cls is None:
        raise MessageRejected(f"unknown routing key {routing_key!r}")
    message: InboundMessage = _decode(cls, body, conv or converter)
    return message


def decode_outbound_message(
    routing_key: str, body: bytes, conv: cattrs.Converter | None = None
) -> OutboundMessage:
    """Decode a message the worker publishes (for its consumers and tests), as strictly."""
    cls = OUTBOUND_MESSAGES.get(routing_key)
    if cls is None:
        raise MessageRejected(f"unknown routing key {routing_key!r}")
    message: OutboundMessage = _decode(cls, body, conv or converter)
    return message


def encode_message(
    message: InboundMessage | OutboundMessage, conv: cattrs.Converter | None = None
) -> bytes:
    """The JSON body of a message (UTF-8, compact, field order as declared)."""
    data = (conv or converter).unstructure(message)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
