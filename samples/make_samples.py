"""Write the bundled sample repository, nodes and config used by the README's first command.

Run: ``python samples/make_samples.py`` (deterministic; the outputs are committed).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGISTRY = "registry.example.org"
REPOSITORY = "lsstsqre/sciplat-lab"


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def tags() -> dict[str, str]:
    out: dict[str, str] = {}
    for major in range(24, 29):
        out[f"r{major}_0_0"] = digest(f"r{major}")
        out[f"r{major}_0_0_rsp{major * 100}"] = digest(f"r{major}-rsp")
    out["r29_0_0_rc1"] = digest("rc1")
    out["r29_0_0_rc2"] = digest("rc2")
    out["r29_0_0_rc10"] = digest("rc10")
    day = date(2077, 11, 4)
    for week in range(30, 45):
        out[f"w_2077_{week}"] = digest(f"w{week}")
        out[f"w_2077_{week}-amd64"] = digest(f"w{week}-amd64")
        out[f"w_2077_{week}-arm64"] = digest(f"w{week}-arm64")
        out[f"w_2077_{week}_c0050.001"] = digest(f"w{week}-c50")
    for offset in range(20):
        d = day - timedelta(days=offset)
        out[f"d_{d.year}_{d.month:02d}_{d.day:02d}"] = digest(f"d{d}")
    out["exp_w_2077_44_testing"] = digest("exp1")
    out["exp_random_thing"] = digest("exp2")
    out["recommended"] = out["w_2077_42"]
    out["latest_weekly"] = out["w_2077_44"]
    out["latest_daily"] = out["d_2077_11_04"]
    out["latest_release"] = out["r28_0_0"]
    out["my-build"] = digest("unknown")
    return out


def nodes(tag_digests: dict[str, str]) -> dict[str, object]:
    def image(tag: str, size: int) -> dict[str, object]:
        return {
            "names": [
                f"{REGISTRY}/{REPOSITORY}:{tag}",
                f"{REGISTRY}/{REPOSITORY}@{tag_digests[tag]}",
            ],
            "size_bytes": size,
        }

    common = [image("w_2077_42", 9_000_000_000), image("w_2077_44", 9_100_000_000)]
    labels = {"nublado": "lab"}
    return {
        "node-a": {"labels": labels, "images": [*common, image("d_2077_11_04", 9_200_000_000)]},
        "node-b": {"labels": labels, "images": common},
        "node-c": {"labels": labels, "images": [image("w_2077_42", 9_000_000_000)]},
        "node-gpu": {
            "labels": labels,
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
            "images": [],
        },
        "node-system": {"labels": {"role": "system"}, "images": []},
    }


CONFIG = f"""\
# A controller config in the reference's format: only images, dropdownMenu and
# lab.nodeSelector / lab.tolerations are read; other keys are ignored.
images:
  source:
    type: docker
    registry: {REGISTRY}
    repository: {REPOSITORY}
  recommendedTag: recommended
  numReleases: 1
  numWeeklies: 2
  numDailies: 3
  pin:
    - r27_0_0
  refreshInterval: 5m
  prepullTimeout: 10m
dropdownMenu:
  weekly:
    age: 8w
  daily:
    number: 7
  release:
    cutoffVersion: 26.0.0
  releaseCandidate:
    number: 2
lab:
  nodeSelector:
    nublado: lab
  tolerations: []
"""


def main() -> None:
    tag_digests = tags()
    (HERE / "tags.json").write_text(json.dumps(tag_digests, indent=2) + "\n")
    (HERE / "nodes.json").write_text(json.dumps(nodes(tag_digests), indent=2) + "\n")
    (HERE / "config.yaml").write_text(CONFIG)


if __name__ == "__main__":
    main()
