"""The SQL loader: named parts, named parameters, and the ``.sql`` files shipped as package data."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest

from worker.adapters.ledger.statements import (
    SQL_FOLDER,
    Sql,
    SqlError,
    Statement,
    compose,
    identifier,
    literals,
    load,
)

ROOT = Path(__file__).resolve().parents[4]
PACKAGE = "worker.adapters.ledger"


def sql_names(folder: Traversable, prefix: str = "") -> set[str]:
    """The ``load`` names of every ``.sql`` file below ``folder``."""
    found: set[str] = set()
    for entry in folder.iterdir():
        if entry.is_dir():
            found |= sql_names(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".sql"):
            found.add(prefix + entry.name.removesuffix(".sql"))
    return found


def test_every_sql_file_loads_and_is_package_data() -> None:
    names = sql_names(files(PACKAGE).joinpath(SQL_FOLDER))
    assert {"eventlog/append", "nodefold/nodes", "nodefold/node_images"} <= names
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ][PACKAGE]
    for name in names:
        assert load(name).text, name
        path = f"{SQL_FOLDER}/{name}.sql"
        assert any(fnmatch.fnmatch(path, g) and g.count("/") == path.count("/") for g in globs)


def test_a_built_package_holds_the_sql_files_and_finds_them(tmp_path: Path) -> None:
    """What setuptools builds (a wheel's contents) has every file, found through
    importlib.resources from the built copy, not from this checkout."""
    source, built = tmp_path / "source", tmp_path / "built"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "worker", source / "worker", ignore=shutil.ignore_patterns("__pycache__")
    )
    build = [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py"]
    subprocess.run([*build, "--build-lib", str(built)], cwd=source, check=True, capture_output=True)
    probe = (
        "import json, pathlib, worker; from importlib.resources import files;"
        "from worker.adapters.ledger.statements import load;"
        f"root = files({PACKAGE!r}).joinpath('sql');"
        "found = [str(p.relative_to(root))[:-4] for p in pathlib.Path(str(root)).rglob('*.sql')];"
        "print(json.dumps([worker.__file__, found, [len(load(n).text) for n in found]]))"
    )
    env = {"PYTHONPATH": str(built), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    where, names, sizes = json.loads(out.stdout)
    assert where.startswith(str(built))
    assert set(names) == sql_names(files(PACKAGE).joinpath(SQL_FOLDER))
    assert all(sizes)


def test_named_parameters_become_positions_once_each() -> None:
    statement = Statement(
        Sql("SELECT :b, CAST(:a AS text[]), :b WHERE x ->> 'k' LIKE 'p.%' AND y = '{}'::jsonb")
    )
    assert statement.sql == (
        "SELECT $1, CAST($2 AS text[]), $1 WHERE x ->> 'k' LIKE 'p.%' AND y = '{}'::jsonb"
    )
    assert statement.params == ("b", "a")
    assert statement.args({"a": [1], "b": 2}) == (2, [1])
    with pytest.raises(TypeError):
        statement.args({"a": 1})
    with pytest.raises(TypeError):
        statement.args({"a": 1, "b": 2, "c": 3})


def test_compose_fills_every_slot_and_only_slots() -> None:
    template = Sql("SELECT {{columns}} FROM {{ table }} WHERE {{columns}} IS NOT NULL")
    composed = compose(template, columns=Sql("a"), table=identifier("ledger.t"))
    assert composed.text == "SELECT a FROM ledger.t WHERE a IS NOT NULL"
    with pytest.raises(SqlError, match="slots"):
        compose(template, columns=Sql("a"))
    with pytest.raises(SqlError, match="slots"):
        compose(template, columns=Sql("a"), table=Sql("t"), extra=Sql("x"))
    with pytest.raises(SqlError, match="open slots"):
        Statement(template)
    with pytest.raises(SqlError, match="malformed"):
        compose(Sql("SELECT {{Bad}}"))


def test_names_and_constants_are_checked_before_they_enter_sql() -> None:
    with pytest.raises(SqlError):
        identifier("nodes; DROP TABLE x")
    assert literals(["a", "it's"]).text == "'a', 'it''s'"


def test_files_use_named_parameters_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SqlError, match="no SQL file"):
        load("nodefold/no_such_file")
    with pytest.raises(SqlError, match="bad SQL file name"):
        load("../schema")
    for body, style in (("SELECT $1", r"\$n"), ("SELECT :a::text", ":name::type")):
        folder = tmp_path / SQL_FOLDER
        folder.mkdir(exist_ok=True)
        (folder / "probe.sql").write_text(f"-- a probe\n{body}\n")
        monkeypatch.setattr("worker.adapters.ledger.statements.files", lambda _: tmp_path)
        load.cache_clear()
        try:
            with pytest.raises(SqlError, match=style):
                load("probe")
        finally:
            monkeypatch.undo()
            load.cache_clear()
