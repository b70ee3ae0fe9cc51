"""The worker loop: consume the three queues, fold each batch in one transaction, plan, relay.

Inventories and pod completions are handled per batch by ``services.prepull.handle_batch``
(one ledger transaction; the broker acknowledges after it returned). Refresh requests run
one refresh per batch (refreshes of a repository never overlap, across processes), then a
planning round. Besides the consumers, three tasks run: the outbox relay, a planning tick
(timeouts and back-off move with the clock) and the refresh schedule, which publishes a
``refresh.request`` every ``refreshInterval`` (with jitter) unless one started recently,
so the single-active-consumer refresh queue keeps one refresher at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import structlog

from worker.domain.errors import ImageLedgerError, TransientError
from worker.domain.events import RefreshFailed, TagDiscovered, TagMoved, TagRemoved, TagResolved
from worker.domain.messages import (
    Delivery,
    NodeInventory,
    PodCompleted,
    RefreshRequested,
)
from worker.factory import Runtime, connect_unless_stopped, utcnow
from worker.services.admission import clock_admission
from worker.services.prepull import BatchReport, handle_batch, node_rules, prepull_settings
from worker.services.refresh import RefreshReport

__all__ = ["TRANSIENT", "Worker"]

TRANSIENT = (TransientError,)
"""Errors that hold a whole batch until the database answers (no attempt counted) rather
than isolate a message and count an attempt towards the dead-letter queue: the database's
``TransientLedgerError`` (unreachable, missing, shutting down, a lost conflict) and the
broker's ``BrokerUnavailableError``."""

log = structlog.get_logger("imageledger.worker")


class Worker:
    """One worker process's consumers and background tasks."""

    def __init__(self, runtime: Runtime, *, schedule_refreshes: bool = True) -> None:
        self._rt = runtime
        config = runtime.app.config
        self._rules = node_rules(config)
        self._settings = prepull_settings(config)
        self._schedule = schedule_refreshes
        self._admit = clock_admission(config.queue.max_clock_skew, utcnow)
        self._tasks: list[asyncio.Task[None]] = []

    async def handle_fold(self, deliveries: list[Delivery]) -> None:
        """Inventories and pod completions: record, plan, commit (then the broker acks)."""
        report = await handle_batch(
            self._rt.store,
            deliveries,
            rules=self._rules,
            settings=self._settings,
            clock=utcnow,
        )
        self._after(report)

    async def handle_refresh(self, deliveries: list[Delivery]) -> None:
        """One refresh for the batch of requests (keyed by the first message id), then plan."""
        causation = deliveries[0].message_id
        try:
            report = await self._rt.app.refresh_now(causation=causation)
        except Exception as exc:  # held or retried by the broker; counted as a failure
            self._rt.metrics.refresh_failed(
                "database" if isinstance(exc, TransientError) else "internal"
            )
            raise
        self._rt.metrics.refresh_finished(report.summary, report.failure)
        self._rt.metrics.events_appended(_refresh_events(report))
        self._rt.relay.wake()  # images.changed, if the menu or the prepull set changed
        await self.plan()

    async def plan(self) -> BatchReport:
        """A planning round in a transaction of its own."""
        report = await handle_batch(
            self._rt.store, [], rules=self._rules, settings=self._settings, clock=utcnow
        )
        self._after(report)
        return report

    def _after(self, report: BatchReport) -> None:
        self._rt.metrics.events_appended(report.appended)
        if (
            report.requested
            or report.completed
            or report.timeouts
            or report.parked
            or report.announced
        ):
            self._rt.relay.wake()

    async def start(self) -> None:
        """Connect, start the consumers and the background tasks."""
        broker = self._rt.broker
        await broker.connect()
        for key, handler in (
            (NodeInventory.ROUTING_KEY, self.handle_fold),
            (PodCompleted.ROUTING_KEY, self.handle_fold),
            (RefreshRequested.ROUTING_KEY, self.handle_refresh),
        ):
            await broker.consume(key, handler, transient=TRANSIENT, admit=self._admit)
        self._spawn(self._rt.relay.run(), "outbox relay")
        self._spawn(self._record_policy(), "policy")
        self._spawn(self._plan_ticks(), "planning tick")
        if self._schedule:
            self._spawn(self._refresh_schedule(), "refresh schedule")
        log.info("worker started", exchange=broker.topology.exchange)

    async def _record_policy(self) -> None:
        """Record the configuration's policy if it changed (the next refresh does it too,
        so a database outage now only delays it)."""
        try:
            appended = await self._rt.app.record_policy()
        except ImageLedgerError as exc:
            log.warning("policy not recorded at start; the next refresh records it", error=str(exc))
            return
        if appended:
            log.info("policy recorded: the configuration changed")

    def _spawn(self, job: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(job, name=name))

    async def stop(self) -> None:
        """Finish and acknowledge the batches in hand, stop the tasks, close the broker."""
        await self._rt.broker.stop_consuming()
        self._rt.relay.stop()
        for task in self._tasks:
            if task.get_name() != "outbox relay":
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._rt.broker.close()
        log.info("worker stopped")

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (SIGTERM), then stop gracefully. RabbitMQ is connected
        first (with back-off, a log line per retry) unless ``stop`` comes before."""
        if not await connect_unless_stopped(self._rt.broker.connect(), stop, log, "worker"):
            return
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def _plan_ticks(self) -> None:
        interval = self._rt.app.config.prepull.plan_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.plan()
            except ImageLedgerError as exc:
                log.warning("planning tick failed; next tick retries", error=str(exc))

    async def _refresh_schedule(self) -> None:
        interval = self._rt.app.config.images.refresh_interval
        repository = self._rt.app.config.images.repository
        while True:
            await asyncio.sleep(_jittered(interval))
            try:
                if await self._rt.status.refreshed_within(repository, interval / 2):
                    continue
                slot = int(utcnow().timestamp() // interval.total_seconds())
                await self._rt.broker.publish_message(
                    RefreshRequested(reason="scheduled", requested_at=utcnow()),
                    message_id=f"scheduled-refresh:{repository}:{slot}",
                )
                log.info("scheduled refresh requested", repository=str(repository))
            except ImageLedgerError as exc:
                log.warning("cannot schedule a refresh; retrying later", error=str(exc))


def _refresh_events(report: RefreshReport) -> dict[str, int]:
    """New events by type of a refresh (nothing when it was a redelivery)."""
    summary = report.summary
    if not report.appended:
        return {}
    if isinstance(summary, RefreshFailed):
        return {summary.TYPE: 1}
    counts = {
        TagDiscovered.TYPE: summary.discovered,
        TagResolved.TYPE: summary.resolved,
        TagMoved.TYPE: summary.moved,
        TagRemoved.TYPE: summary.removed,
        summary.TYPE: 1,
    }
    return {k: v for k, v in counts.items() if v}


def _jittered(interval: timedelta, jitter: float = 0.1) -> float:
    """The interval in seconds, spread by ±``jitter`` so that workers drift apart."""
    return interval.total_seconds() * (1 + random.uniform(-jitter, jitter))
