"""Benchmark the pure domain: tag parsing rate and a 10,000-tag / 500-node evaluation.

Run from the repository root::

    python bench/domain.py --out bench/results/domain.json

Add ``--profile`` to print (and store in the JSON) where one evaluation spends its time.
See docs/benchmarks.md, section "Domain", for how to read the output.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import os
import platform
import pstats
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# As ``python bench/<script>.py``: the checkout's root goes first on the path, before bench/,
# so ``worker`` and ``tests`` are this checkout's packages (never a file here, never another copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.config import Config
from worker.converter import parse_config
from worker.domain.images import TagEntry
from worker.domain.nodes import Node, Taint
from worker.domain.tags import parse_tag
from worker.services.evaluate import evaluate

PARSE_TARGET = 50_000.0
"""Tags parsed per second, at least."""
EVALUATION_TARGET = 1.0
"""Seconds for the whole 10,000-tag / 500-node evaluation, at most."""

SEED = 20770143
NOW = datetime(2025, 2, 19, 17, tzinfo=UTC)
BASELINE = re.compile(r"w_(\d+)_(\d+)")
"""The bare loop's regex: one simple weekly pattern."""

CONFIG: dict[str, Any] = {
    "images": {
        "source": {
            "type": "docker",
            "registry": "lighthouse.ceres",
            "repository": "library/sketchbook",
        },
        "recommendedTag": "recommended",
        "numReleases": 1,
        "numWeeklies": 2,
        "numDailies": 3,
        "pin": ["r26_0_0", "w_2024_40"],
        "aliasTags": ["latest", "latest_weekly", "latest_daily", "latest_release"],
    },
    "dropdownMenu": {
        "release": {"cutoffVersion": "24.0.0", "number": 20},
        "weekly": {"age": "52w", "number": 40},
        "daily": {"age": "30d", "number": 20},
        "releaseCandidate": {"number": 5},
        "experimental": {"age": "26w", "number": 30},
    },
    "lab": {
        "nodeSelector": {"nublado": "eligible"},
        "tolerations": [{"key": "dedicated", "value": "lab", "effect": "NoSchedule"}],
    },
}


# --------------------------------------------------------------------------- data


def _digest(rnd: random.Random) -> str:
    return "sha256:" + hashlib.sha256(rnd.randbytes(16)).hexdigest()


def _arch_variants(rnd: random.Random, tag: str, chance: float) -> list[str]:
    return [tag, f"{tag}-amd64", f"{tag}-arm64"] if rnd.random() < chance else [tag]


def _typed_tags(rnd: random.Random) -> list[str]:
    """Releases, candidates, weeklies, dailies and experimentals, newest last."""
    tags: list[str] = []
    for major in range(12, 30):
        for minor in range(4):
            for patch in range(rnd.randint(1, 3)):
                release = f"r{major}_{minor}_{patch}"
                tags += [f"{release}_rc{n}" for n in range(1, rnd.randint(2, 5))]
                tags += _arch_variants(rnd, release, 0.3)
                for build in sorted(rnd.sample(range(1, 3000), rnd.randint(1, 6))):
                    tags += _arch_variants(rnd, f"{release}_rsp{build}", 0.2)
    tags += ["r170", "r180", "r190"]  # legacy releases
    for year in range(2016, 2026):
        for week in range(1, 53):
            weekly = f"w_{year}_{week:02d}"
            tags += _arch_variants(rnd, weekly, 0.7)
            if year >= 2023 and rnd.random() < 0.4:
                tags.append(f"{weekly}_c00{rnd.randint(35, 50)}.{rnd.randint(1, 9):03d}")
            if rnd.random() < 0.15:
                tags.append(f"exp_{weekly}_rsp{rnd.randint(1, 99)}_{rnd.choice(['dm', 'tickets'])}")
    day = date(2016, 1, 1)
    while day <= NOW.date():
        daily = f"d_{day.year}_{day.month:02d}_{day.day:02d}"
        tags += _arch_variants(rnd, daily, 0.8 if day.year >= 2020 else 0.2)
        if day.year >= 2023 and rnd.random() < 0.3:
            tags.append(f"{daily}_c00{rnd.randint(35, 50)}.{rnd.randint(1, 9):03d}")
        if rnd.random() < 0.15:
            tags.append(f"exp_{daily}_DM-{rnd.randint(30000, 48000)}")
        day += timedelta(days=1)
    return tags


def make_entries(count: int = 10_000, seed: int = SEED) -> list[TagEntry]:
    """A realistic, distinct tag set of exactly ``count`` tags with digests."""
    rnd = random.Random(seed)
    typed = list(dict.fromkeys(_typed_tags(rnd)))
    extras = ["recommended", "latest", "latest_weekly", "latest_daily", "latest_release"]
    extras += ["recommended_c0050", "latest-amd64", "my-thing", "test_build", "nightly", "SHA1"]
    extras += [f"exp_random_{rnd.getrandbits(32):08x}" for _ in range(40)]
    extras += [f"exp_sal_c00{cycle}-amd64" for cycle in range(40, 50)]
    if len(typed) + len(extras) < count:
        raise SystemExit(f"generator too small: {len(typed) + len(extras)} < {count}")
    # Drop random old tags (keep the newest 2,000) so that the total is exact.
    old, recent = typed[:-2000], typed[-2000:]
    keep = sorted(rnd.sample(range(len(old)), count - len(extras) - len(recent)))
    tags = [old[i] for i in keep] + recent + extras
    assert len(tags) == len(set(tags)) == count
    digests = {tag: _digest(rnd) for tag in tags}
    newest = {
        "latest_weekly": max((t for t in tags if re.fullmatch(r"w_\d+_\d+", t)), default=None),
        "latest_daily": max((t for t in tags if re.fullmatch(r"d_\d+_\d+_\d+", t)), default=None),
        "latest_release": "r29_2_0",
    }
    newest["recommended"] = newest["latest_weekly"]
    newest["latest"] = newest["latest_daily"]
    for alias, target in newest.items():
        if target in digests:
            digests[alias] = digests[target]
    entries = [TagEntry(t, digests[t], rnd.randint(2, 9) * 10**9) for t in tags]
    rnd.shuffle(entries)
    return entries


def make_nodes(
    entries: Sequence[TagEntry], prepull: Sequence[str], count: int = 500, seed: int = SEED
) -> list[Node]:
    """Nodes holding ~50 digests each, some tainted or not selected.

    Every other ``prepull`` tag's digest is on every node; the others are still missing
    on about 3% of nodes. The rest are random recent images.
    """
    rnd = random.Random(seed + 1)
    by_tag = {e.tag: e.digest for e in entries}
    ordered = sorted((parse_tag(e.tag) for e in entries), key=lambda p: p.sort_key)
    recent = [d for p in ordered if p.date is not None and (d := by_tag[p.tag])][-300:]
    wanted = [d for t in prepull if (d := by_tag.get(t))]
    nodes = []
    for index in range(count):
        held = {d for i, d in enumerate(wanted) if i % 2 or rnd.random() < 0.97}
        while len(held) < 50:
            held.add(rnd.choice(recent))
        labels = {"nublado": "eligible" if rnd.random() < 0.9 else "system", "zone": "a"}
        taints: list[Taint] = []
        roll = rnd.random()
        if roll < 0.05:
            taints.append(Taint("node.kubernetes.io/unschedulable", "NoSchedule"))
        elif roll < 0.15:
            taints.append(Taint("dedicated", "NoSchedule", "lab"))
        elif roll < 0.20:
            taints.append(Taint("spot", "PreferNoSchedule"))
        nodes.append(
            Node(
                name=f"node-{index:04d}",
                labels=labels,
                taints=tuple(taints),
                digests={d: rnd.randint(1, 9) * 10**9 for d in sorted(held)},
            )
        )
    return nodes


# --------------------------------------------------------------------------- measurements


def _best_rate(loop: Callable[[], None], items: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - start)
    return items / best


def measure_parsing(tags: Sequence[str], repeats: int) -> dict[str, Any]:
    """Best-of-``repeats`` parse rate, and a bare ``re.fullmatch`` loop for scale."""

    def parse_all() -> None:
        for tag in tags:
            parse_tag(tag)

    def match_all() -> None:
        fullmatch = BASELINE.fullmatch
        for tag in tags:
            fullmatch(tag)

    parse_all()  # warm the regex cache
    rate = _best_rate(parse_all, len(tags), repeats)
    baseline = _best_rate(match_all, len(tags), repeats)
    return {
        "parse_tags_per_second": _figure(rate, "tags/s", PARSE_TARGET, rate >= PARSE_TARGET),
        "baseline_fullmatch_per_second": _figure(baseline, "strings/s"),
        "baseline_to_parse_ratio": round(baseline / rate, 1),
        "statistic": f"best of {repeats}",
    }


def run_evaluation(config: Config, entries: Sequence[TagEntry], nodes: Sequence[Node]) -> Any:
    """The whole path: evaluate, then every output the platform shows."""
    view = evaluate(config, entries, nodes).view
    return (
        view.spawner_images(),
        view.menu_images(config.dropdown_menu, NOW),
        view.prepuller_images(),
        view.node_statuses(),
        view.prepull_plan(),
    )


def _stages(config: Config, entries: Sequence[TagEntry], nodes: Sequence[Node]) -> dict[str, float]:
    clock = time.perf_counter
    marks = [("start", clock())]
    view = evaluate(config, entries, nodes).view
    marks.append(("evaluate", clock()))
    view.spawner_images()
    marks.append(("spawner_images", clock()))
    view.menu_images(config.dropdown_menu, NOW)
    marks.append(("menu_images", clock()))
    view.prepuller_images()
    marks.append(("prepuller_images", clock()))
    view.node_statuses()
    marks.append(("node_statuses", clock()))
    view.prepull_plan()
    marks.append(("prepull_plan", clock()))
    return {name: t - marks[i][1] for i, (name, t) in enumerate(marks[1:])}


def measure_evaluation(
    config: Config, entries: Sequence[TagEntry], nodes: Sequence[Node], runs: int
) -> dict[str, Any]:
    """Median over ``runs`` of the whole path, with a per-stage median breakdown."""
    run_evaluation(config, entries, nodes)  # warm up
    samples = [_stages(config, entries, nodes) for _ in range(runs)]
    totals = [sum(s.values()) for s in samples]
    median = statistics.median(totals)
    stages = {name: round(statistics.median(s[name] for s in samples), 4) for name in samples[0]}
    return {
        "evaluation_seconds": _figure(median, "s", EVALUATION_TARGET, median <= EVALUATION_TARGET),
        "evaluation_min_max_seconds": [round(min(totals), 4), round(max(totals), 4)],
        "stages_seconds": stages,
        "statistic": f"median of {runs}",
    }


def profile_evaluation(
    config: Config, entries: Sequence[TagEntry], nodes: Sequence[Node], top: int = 12
) -> dict[str, list[dict[str, Any]]]:
    """Where one evaluation spends its time: top own-time and our top cumulative functions."""
    profiler = cProfile.Profile()
    profiler.runcall(run_evaluation, config, entries, nodes)
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(own for _, _, own, _, _ in raw.values())

    def row(key: tuple[str, int, str], value: tuple[Any, ...]) -> dict[str, Any]:
        (filename, line, name), (_, calls, own, cumulative, _) = key, value
        where = f"{Path(filename).name}:{line}" if line else filename
        return {
            "function": f"{where}({name})",
            "calls": calls,
            "own_share": round(own / total, 3),
            "cumulative_share": round(cumulative / total, 3),
        }

    by_own = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    ours = [item for item in raw.items() if f"{os.sep}worker{os.sep}" in item[0][0]]
    by_cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)[:top]
    return {
        "by_own_time": [row(k, v) for k, v in by_own],
        "by_cumulative_time": [row(k, v) for k, v in by_cumulative],
    }


def _figure(
    value: float, unit: str, target: float | None = None, passed: bool | None = None
) -> dict[str, Any]:
    figure: dict[str, Any] = {
        "value": round(value, 4) if value < 1000 else round(value),
        "unit": unit,
    }
    if target is not None:
        figure |= {"target": target, "pass": passed}
    return figure


# --------------------------------------------------------------------------- main


def _describe(entries: Sequence[TagEntry], nodes: Sequence[Node], config: Config) -> dict[str, Any]:
    evaluation = evaluate(config, entries, nodes)
    view = evaluation.view
    spawner, menu, prepuller, statuses, plan = run_evaluation(config, entries, nodes)
    images = view.collection.images
    return {
        "tags": len(entries),
        "tags_by_type": dict(sorted(Counter(i.image_type.value for i in images).items())),
        "arch_specific_tags": sum(i.parsed.is_arch_specific for i in images),
        "nodes": len(nodes),
        "nodes_selected": len(statuses),
        "nodes_eligible": len(view.eligible_nodes),
        "digests_per_node_mean": round(statistics.mean(len(n.digests) for n in nodes), 1),
        "prepull_candidates": len(evaluation.candidates),
        "spawner_images": len(spawner.all),
        "menu_radio": len(menu.menu),
        "menu_dropdown": len(menu.dropdown),
        "prepulled": len(prepuller.prepulled),
        "pending": len(prepuller.pending),
        "prepull_requests": len(plan),
        "config": CONFIG,
        "now": NOW.isoformat(),
        "seed": SEED,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write the JSON report, print a summary; 0 even when slow."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/domain.json"))
    parser.add_argument("--repeats", type=int, default=7, help="parse repeats (best of)")
    parser.add_argument("--runs", type=int, default=7, help="evaluation runs (median of)")
    parser.add_argument("--profile", action="store_true", help="add a cProfile breakdown")
    args = parser.parse_args(argv)

    config = parse_config(CONFIG, source="bench config")
    entries = make_entries()
    nodes = make_nodes(entries, evaluate(config, entries, []).candidates)
    tags = [e.tag for e in entries]
    gc.collect()
    parsing = measure_parsing(tags, args.repeats)
    evaluation = measure_evaluation(config, entries, nodes, args.runs)
    report: dict[str, Any] = {
        "benchmark": "domain",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "recorded_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "workload": _describe(entries, nodes, config),
        "parsing": parsing,
        "evaluation": evaluation,
    }
    slow = not (
        parsing["parse_tags_per_second"]["pass"] and evaluation["evaluation_seconds"]["pass"]
    )
    if args.profile or slow:
        report["profile"] = profile_evaluation(config, entries, nodes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    _print_summary(report, args.out)
    return 0


def _print_summary(report: dict[str, Any], out: Path) -> None:
    parsing, evaluation = report["parsing"], report["evaluation"]
    rate, total = parsing["parse_tags_per_second"], evaluation["evaluation_seconds"]

    def verdict(figure: dict[str, Any]) -> str:
        return "PASS" if figure["pass"] else "SLOW"

    print(f"domain benchmark, Python {report['python']}, {report['cpu_count']} CPUs")
    print(
        f"  parse: {rate['value']:,} tags/s ({parsing['statistic']}; target >= "
        f"{rate['target']:,.0f}) {verdict(rate)}; bare fullmatch "
        f"{parsing['baseline_fullmatch_per_second']['value']:,}/s = "
        f"{parsing['baseline_to_parse_ratio']}x"
    )
    print(
        f"  evaluate 10,000 tags x 500 nodes: {total['value']:.3f} s ({evaluation['statistic']}; "
        f"target <= {total['target']} s) {verdict(total)}"
    )
    stages = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in evaluation["stages_seconds"].items())
    print(f"  stages: {stages}")
    profile = report.get("profile", {})
    for row in profile.get("by_cumulative_time", [])[:8]:
        print(f"  profile (cumulative): {row['cumulative_share']:6.1%} {row['function']}")
    for row in profile.get("by_own_time", [])[:6]:
        print(f"  profile (own): {row['own_share']:6.1%} {row['function']} ({row['calls']} calls)")
    print(f"  written to {out}")


if __name__ == "__main__":
    sys.exit(main())
