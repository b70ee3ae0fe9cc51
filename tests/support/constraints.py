"""The Docker image's constraints file: the runtime dependencies' closure, as installed here.

``python -m tests.support.constraints`` prints a new ``constraints.txt`` pinning every
runtime dependency of ``pyproject.toml`` and everything they need (for the image's Linux
and Python) at the versions installed in this environment, plus the build backend's.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = ["PYPROJECT", "parse_constraints", "pyproject", "render", "runtime_closure"]

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
"""The image's marker environment (``python:3.11-slim``), whatever machine renders the file."""


def pyproject() -> dict[str, object]:
    """``pyproject.toml``, parsed."""
    with PYPROJECT.open("rb") as file:
        return tomllib.load(file)


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": extra})
        for extra in (extras or {""})
    )


def runtime_closure(requirements: list[str]) -> dict[str, str]:
    """Canonical name → installed version of ``requirements`` and all they require (with
    the extras asked for), following the installed packages' metadata.

    Raises
    ------
    PackageNotFoundError
        When a package of the closure is not installed here.
    """
    found: dict[str, str] = {}
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        if (name, extras) in visited:
            continue
        visited.add((name, extras))
        dist = distribution(requirement.name)
        found[name] = dist.version
        for text in dist.requires or []:
            needed = Requirement(text)
            if _applies(needed, extras):
                todo.append(needed)
    return found


def parse_constraints(text: str) -> dict[str, str]:
    """Canonical name → pinned version of a constraints file (``name==version`` lines)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        if match is None:
            raise ValueError(f"not a name==version pin: {line!r}")
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def render(build_pins: dict[str, str]) -> str:
    """A new constraints file: the runtime closure, then the build backend's ``build_pins``."""
    project = pyproject()["project"]
    assert isinstance(project, dict)
    closure = runtime_closure(list(project["dependencies"]))
    lines = [
        "# Exact versions for the Docker image (pip install -c constraints.txt, and",
        "# PIP_CONSTRAINT for the build backend): the runtime dependencies of pyproject.toml",
        "# and everything they need. Regenerate with: python -m tests.support.constraints",
        *(f"{name}=={version}" for name, version in sorted(closure.items())),
        "# the build backend (build-system.requires)",
        *(f"{name}=={version}" for name, version in sorted(build_pins.items())),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Print a new constraints file, keeping the build backend's pins of the current one."""
    current = parse_constraints((ROOT / "constraints.txt").read_text())
    system = pyproject()["build-system"]
    assert isinstance(system, dict)
    build = {canonicalize_name(Requirement(r).name) for r in system["requires"]}
    try:
        print(render({name: current[name] for name in sorted(build) if name in current}), end="")
    except PackageNotFoundError as exc:
        print(f"not installed here: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
