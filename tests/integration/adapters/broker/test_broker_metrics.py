"""The broker's metrics hooks on Prometheus: dead letters by routing key and reason class,
queue labels without the prefix, consumers held (0 while disconnected)."""

from __future__ import annotations

from aio_pika.abc import AbstractRobustConnection

from tests.support.rabbit import drain, publish_raw
from worker.adapters.broker.connection import Broker, BrokerSettings
from worker.adapters.metrics import WorkerMetrics
from worker.domain.messages import Delivery

KEY = "node.inventory"
BODY = b'{"node": "n1", "observed_at": "2077-01-01T00:00:00Z"}'


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_dead_letters_are_counted_by_routing_key_and_reason_class(
    broker_settings: BrokerSettings, rabbit_connection: AbstractRobustConnection
) -> None:
    metrics = WorkerMetrics()
    broker = Broker(broker_settings, metrics)
    assert broker.consumer_counts() == {"refresh": 0, "pod_completed": 0, "node_inventory": 0}

    async def broken(batch: list[Delivery]) -> None:
        raise ValueError("cannot fold this")

    await broker.connect()
    try:
        await broker.consume(KEY, broken)
        assert broker.consumer_counts() == {"refresh": 0, "pod_completed": 0, "node_inventory": 1}
        exchange, queue = broker.topology.exchange, broker.topology.queue_for(KEY).name
        await publish_raw(rabbit_connection, exchange, KEY, BODY, message_id="gives-up")
        await publish_raw(rabbit_connection, exchange, KEY, b"[]", message_id="invalid")
        misrouted = {"x-imageledger-routing-key": "no.such.key"}
        await publish_raw(rabbit_connection, "", queue, BODY, headers=misrouted)
        await drain(rabbit_connection, broker.topology.dead_queue, 3)
    finally:
        await broker.close()
    assert broker.consumer_counts() == {"refresh": 0, "pod_completed": 0, "node_inventory": 0}

    dead = "imageledger_messages_dead_lettered_total"
    assert sample(metrics, dead, routing_key=KEY, reason="gave_up") == 1
    assert sample(metrics, dead, routing_key=KEY, reason="invalid") == 1
    assert sample(metrics, dead, routing_key="other", reason="unroutable") == 1  # bounded
    assert sample(metrics, dead, routing_key="node.gone", reason="invalid") == 0  # known, at 0
    attempts = broker_settings.max_attempts
    retried = "imageledger_messages_retried_total"
    assert sample(metrics, retried, queue="node_inventory") == attempts - 1
    assert sample(metrics, "imageledger_messages_consumed_total", queue="node_inventory") == (
        attempts
    )
    assert sample(metrics, "imageledger_fold_seconds_count", queue="node_inventory") is None
