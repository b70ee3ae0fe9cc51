"""The one cattrs converter: the only place where bytes and dicts become objects, and back.

The package face: callers import from here. ``converter`` reads and writes events, messages
and input files (snake_case keys); the configuration's YAML goes through a second instance
with camelCase keys (``parse_config``, ``load_config``). Both are strict: unknown keys are
errors, timestamps need a zone, nothing is coerced, and a failure names the bad key path.
"""

from worker.converter.bodies import (
    decode_delivery,
    decode_message,
    decode_outbound_message,
    encode_message,
)
from worker.converter.core import converter, structure
from worker.converter.documents import (
    load_config,
    nodes_from_file,
    parse_config,
    tag_entries,
    view_node,
    yaml_problem,
)
from worker.converter.inputs import GarImage
from worker.converter.listings import gar_page, gar_tag_entries
from worker.converter.shapes import (
    menu_json,
    prepuller_status_json,
    resolved_image_json,
    spawner_images_json,
    tag_json,
)
from worker.converter.strict import ValidationError

__all__ = [
    "GarImage",
    "ValidationError",
    "converter",
    "decode_delivery",
    "decode_message",
    "decode_outbound_message",
    "encode_message",
    "gar_page",
    "gar_tag_entries",
    "load_config",
    "menu_json",
    "nodes_from_file",
    "parse_config",
    "prepuller_status_json",
    "resolved_image_json",
    "spawner_images_json",
    "structure",
    "tag_entries",
    "tag_json",
    "view_node",
    "yaml_problem",
]
