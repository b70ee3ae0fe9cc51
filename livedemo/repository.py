"""The sample repository the demo pushes: tags in the reference's naming, dated from today."""

from __future__ import annotations

from datetime import date, timedelta

from attrs import frozen

__all__ = ["Move", "SampleRepository", "sample_repository"]

REPOSITORY = "lsstsqre/sciplat-lab"


@frozen
class Move:
    """The second act: a new weekly is pushed and these aliases move to it."""

    new_tags: tuple[str, ...]
    aliases: tuple[str, ...]

    @property
    def weekly(self) -> str:
        """The new weekly tag."""
        return self.new_tags[0]


@frozen
class SampleRepository:
    """Tags with images of their own, and aliases naming one of those tags."""

    images: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]
    """``(alias, target tag)`` pairs."""
    move: Move

    @property
    def tag_count(self) -> int:
        """Every tag pushed before the move."""
        return len(self.images) + len(self.aliases)


def _weekly(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"w_{year}_{week:02d}"


def _daily(day: date) -> str:
    return f"d_{day.year}_{day.month:02d}_{day.day:02d}"


def sample_repository(today: date, *, short: bool) -> SampleRepository:
    """Releases, candidates, weeklies, dailies, experimentals, cycle and architecture tags.

    The newest weekly is last week's; ``recommended`` names the third newest (cycle-suffixed
    tags and RSP builds are older: they would otherwise outrank the plain tags of their
    week or release); the move
    pushes this week's weekly (and a daily) and points ``recommended`` and ``latest_weekly``
    at it.
    """
    n_weeks, n_days, n_majors, n_arch = (12, 8, 3, 2) if short else (110, 60, 9, 12)
    last_week = today - timedelta(days=7)
    weeklies = [_weekly(last_week - timedelta(weeks=i)) for i in range(n_weeks)]
    dailies = [_daily(today - timedelta(days=i)) for i in range(1, n_days + 1)]
    newest_major = 28
    majors = range(newest_major - n_majors + 1, newest_major + 1)
    releases = [f"r{m}_0_{p}" for m in majors for p in range(3 if m < newest_major else 1)]
    builds = [f"r{m}_0_0_rsp{m * 100 + 7}" for m in majors[:-1]]
    candidates = [f"r{newest_major + 1}_0_0_rc{i}" for i in range(1, 4 if short else 11)]
    candidates += [] if short else [f"r{newest_major}_0_0_rc{i}" for i in range(1, 4)]
    experimentals = [f"exp_{w}_testing" for w in weeklies[: 2 if short else 12]]
    experimentals += ["exp_random_thing"] + ([] if short else ["exp_tickets_DM-41234"])
    cycles = [f"{w}_c0034.{b:03d}" for w in weeklies[3 : 5 if short else 11] for b in (1, 2)]
    cycles += [f"r{newest_major - 1}_0_0_c0034.001"]
    arches = [f"{w}-{arch}" for w in weeklies[:n_arch] for arch in ("amd64", "arm64")]
    images = releases + builds + candidates + weeklies + dailies + experimentals + cycles + arches
    aliases = (
        ("recommended", weeklies[2]),
        ("latest_weekly", weeklies[0]),
        ("latest_daily", dailies[0]),
        ("latest_release", releases[-1]),
        ("recommended_c0034", cycles[0]),
        ("latest", weeklies[0]),
    )
    move = Move(
        new_tags=(_weekly(today), _daily(today)),
        aliases=("recommended", "latest_weekly", "latest"),
    )
    return SampleRepository(images=tuple(images), aliases=aliases, move=move)
