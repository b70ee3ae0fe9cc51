"""Hooks for what arrives from outside: input files (Artifact Registry listings, nodes files)
and the fields of message bodies (references, kubelet images)."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
from attrs import frozen
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from worker.domain.nodes import KubeletImage, Taint
from worker.domain.references import DockerReference

__all__ = [
    "GarImage",
    "NodeFileEntry",
    "NodeFileImage",
    "register_inputs",
    "register_message_fields",
]


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


def _string_tuple(value: Any, _: type) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


def register_inputs(conv: cattrs.Converter) -> None:
    """Lists of strings, and node images with either spelling of their size."""
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], _string_tuple)
    generated = make_dict_structure_fn(NodeFileImage, conv, _cattrs_forbid_extra_keys=True)

    def node_image(value: Any, cls: type) -> NodeFileImage:
        if isinstance(value, dict) and "sizeBytes" in value and "size_bytes" not in value:
            value = {("size_bytes" if k == "sizeBytes" else k): v for k, v in value.items()}
        return generated(value, cls)

    conv.register_structure_hook(NodeFileImage, node_image)


def register_message_fields(conv: cattrs.Converter) -> None:
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
