"""``./demo``: the live demo from an empty machine state back to an empty machine state.

Starts the real registry (loopback, temporary storage) and pushes a sample repository,
creates and migrates a database of its own, picks a RabbitMQ name prefix of its own, runs
``imageledger run``, the stand-in Kubernetes cluster and ``imageledger kube`` between the
two, then shows the dashboard views converging:
first after the initial refresh, then after ``recommended`` moves to a new weekly.
Everything it started or created is removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import traceback
from contextlib import AsyncExitStack, suppress
from datetime import date

from attrs import define, field, frozen

from livedemo.board import Board, read_board
from livedemo.repository import sample_repository
from livedemo.services import DemoError
from livedemo.stage import Stage, say, set_stage
from worker.logs import configure_logging

__all__ = ["main"]


@frozen
class Options:
    """Command-line options."""

    short: bool
    follow: bool
    nodes: int
    timeout: float
    debug: bool
    source: str = "docker"
    """``docker``: the CNCF registry; ``google``: the stand-in Artifact Registry lists it."""


@define
class Outcome:
    """What happened, for the verdict."""

    timeout: float
    phases: list[tuple[str, float | None]] = field(factory=list)
    interrupted: bool = False
    error: str | None = None

    @property
    def converged(self) -> bool:
        """Both acts converged and nothing went wrong."""
        return (
            len(self.phases) == 2
            and all(seconds is not None for _, seconds in self.phases)
            and self.error is None
        )


@define
class Screen:
    """Prints the table whenever it changes (the clock aside) and announces menu renames."""

    shown: list[str] = field(factory=list)
    recommended_name: str = ""

    def show(self, board: Board, elapsed: float) -> None:
        """Print ``board`` if it differs from what was printed last."""
        lines = board.render(elapsed)
        entry = board.recommended()
        name = entry.display_name if entry else ""
        if self.recommended_name and name and name != self.recommended_name:
            say(f"  >> menu entry renamed: {self.recommended_name!r} -> {name!r}")
        self.recommended_name = name or self.recommended_name
        if _key(lines) != _key(self.shown):
            say("\n".join(lines))
            self.shown = lines


def _key(lines: list[str]) -> list[str]:
    return [lines[0].split("] ", 1)[-1], *lines[1:]] if lines else []


async def watch(
    stage: Stage,
    screen: Screen,
    recommended: str,
    within: float,
    *,
    forever: bool = False,
) -> float | None:
    """Read the views every second until they show convergence on ``recommended``; the
    seconds it took, or None after ``within`` seconds."""
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        stage.check_worker()
        board = await read_board(stage.db)
        screen.show(board, elapsed)
        if not forever and board.converged(recommended):
            return elapsed
        if not forever and elapsed > within:
            return None
        await asyncio.sleep(1.0)


async def run_demo(options: Options, outcome: Outcome) -> None:
    """Set the stage, then the two acts (and, with ``--follow``, watch until Ctrl-C)."""
    sample = sample_repository(date.today(), short=options.short)
    async with AsyncExitStack() as stack:
        stage = await set_stage(
            stack,
            sample,
            short=options.short,
            nodes=options.nodes,
            follow=options.follow,
            source=options.source,
        )
        screen = Screen()
        say("== act 1: imageledger refresh -> the worker lists the registry, plans prepulls;")
        say("   imageledger kube runs them as pods on the stand-in cluster")
        say("   cells: ok = present, pull = in flight, FAIL = failed (retried), wait = queued,")
        say("          - = node not eligible; R = on the spawner menu's radio list")
        recommended = stage.digests["recommended"]
        if not await act(stage, screen, "first refresh", recommended, outcome):
            return
        move = sample.move
        say(
            f"== act 2: push {', '.join(move.new_tags)}; move {', '.join(move.aliases)} "
            f"to {move.weekly}; imageledger refresh"
        )
        new = await stage.pusher.push_tags(stage.repository, list(move.new_tags))
        for alias in move.aliases:
            await stage.pusher.tag(stage.repository, alias, new[move.weekly])
        stage.pushed({**new, **dict.fromkeys(move.aliases, new[move.weekly])})
        if not await act(stage, screen, "after the move", new[move.weekly], outcome):
            return
        created, failed = await stage.cluster.pod_counts()
        say(f"   {created} prepull pods, {failed} of them failed on purpose (and were retried)")
        if stage.google is not None:
            say(f"   stand-in Google: {stage.google.summary()}")
        if options.follow:
            say("== following (refreshes every minute, inventories keep coming); Ctrl-C to stop")
            await watch(stage, screen, new[move.weekly], 0, forever=True)


async def act(stage: Stage, screen: Screen, label: str, digest: str, outcome: Outcome) -> bool:
    """Request a refresh (as ``imageledger refresh`` does) and watch, from then on, until
    converged on ``digest`` as the recommended image; record the outcome."""
    refreshing = asyncio.create_task(stage.cluster.request_refresh())
    try:
        seconds = await watch(stage, screen, digest, outcome.timeout)
    finally:
        if not refreshing.done():
            refreshing.cancel()
        with suppress(asyncio.CancelledError):
            await refreshing  # its failure, if any, is the demo's
    outcome.phases.append((label, seconds))
    if seconds is None:
        say(f"   not converged after {outcome.timeout:.0f} s; the worker's log ends with:")
        say(stage.worker.log_tail())
        return False
    say(f"   converged in {seconds:.1f} s")
    return True


async def entry(options: Options) -> Outcome:
    """Run the demo as a task that SIGINT/SIGTERM cancel once (cleanup still runs)."""
    outcome = Outcome(options.timeout)
    task = asyncio.create_task(run_demo(options, outcome))
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        if not outcome.interrupted:
            outcome.interrupted = True
            say("\n== interrupted: cleaning up")
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    try:
        await task
    except asyncio.CancelledError:
        if not outcome.interrupted:
            raise
    except DemoError as exc:
        outcome.error = str(exc)
    except Exception as exc:
        if options.debug:
            traceback.print_exc()
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


def verdict(outcome: Outcome) -> str:
    """The last line: converged or not, and how long each act took."""
    parts = [
        f"{label} {seconds:.1f} s" if seconds is not None else f"{label} timed out"
        for label, seconds in outcome.phases
    ]
    if outcome.interrupted:
        parts.append("interrupted")
    if outcome.error:
        parts.append(f"error: {outcome.error}")
    answer = "yes" if outcome.converged else "no"
    return f"converged: {answer}" + (f" ({'; '.join(parts)})" if parts else "")


def parse_options(argv: list[str]) -> Options:
    """``--short``, ``--follow``, ``--nodes N``, ``--timeout S``, ``--debug``,
    ``--source docker|google``."""
    parser = argparse.ArgumentParser(prog="./demo", description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="Fewer tags, faster pulls.")
    parser.add_argument("--follow", action="store_true", help="Keep running until Ctrl-C.")
    parser.add_argument("--nodes", type=int, default=4, help="Simulated nodes (default 4).")
    parser.add_argument("--timeout", type=float, help="Seconds per act (default 20 / 90).")
    parser.add_argument("--debug", action="store_true", help="Tracebacks for errors.")
    parser.add_argument(
        "--source",
        choices=("docker", "google"),
        default="docker",
        help="Where the worker lists images: the registry itself, or the stand-in Google "
        "Artifact Registry listing it (default docker).",
    )
    args = parser.parse_args(argv)
    if args.nodes < 2:
        parser.error("--nodes: at least 2 (one of them is tainted)")
    timeout = args.timeout or (20.0 if args.short else 90.0)
    return Options(args.short, args.follow, args.nodes, timeout, args.debug, args.source)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when both acts converged (or Ctrl-C after they did with --follow)."""
    options = parse_options(sys.argv[1:] if argv is None else argv)
    configure_logging("debug" if options.debug else "warning")  # the narration is the output
    outcome = asyncio.run(entry(options))
    say(verdict(outcome))
    if outcome.interrupted and not outcome.converged:
        return 130
    return 0 if outcome.converged else 1


if __name__ == "__main__":
    sys.exit(main())
