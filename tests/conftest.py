"""Fixtures for every test: each starts with structlog's defaults, whatever ran before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """Commands run in-process configure structlog globally (level, renderer); undo it."""
    yield
    structlog.reset_defaults()
