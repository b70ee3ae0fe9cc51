"""Looking at the workers' RabbitMQ without changing it: their exchange and queues, by
passive declares (nothing is created, so a wrong prefix shows as missing)."""

from __future__ import annotations

import aio_pika
from attrs import frozen

from worker.adapters.broker.connection import safe_amqp_url
from worker.adapters.broker.topology import (
    AUTHENTICATION_FAILED,
    CONNECTION_LOST,
    UNREACHABLE,
    BrokerError,
    BrokerUnavailableError,
    QueueState,
    build_topology,
    exchange_exists,
    queue_state,
)

__all__ = ["TopologyState", "probe_topology"]


@frozen
class TopologyState:
    """What RabbitMQ holds of one prefix's topology now."""

    url: str
    """The broker's URL without its password."""
    exchange: str
    exchange_exists: bool
    work_queues: tuple[QueueState, ...]
    """The inbound work queues (refresh, pod completions, node inventories)."""
    dead_queue: QueueState

    @property
    def missing(self) -> list[str]:
        """The exchange and queues that do not exist, named."""
        names = [] if self.exchange_exists else [f"exchange {self.exchange}"]
        queues = [*self.work_queues, self.dead_queue]
        return names + [f"queue {q.name}" for q in queues if not q.exists]

    @property
    def idle_queues(self) -> list[str]:
        """The work queues that exist without a consumer (no worker runs on this prefix)."""
        return [q.name for q in self.work_queues if q.exists and q.consumers == 0]


async def probe_topology(url: str, prefix: str) -> TopologyState:
    """Connect once (an operator is waiting) and look at the topology of ``prefix``.

    Raises BrokerUnavailableError when RabbitMQ cannot be reached or the connection is
    lost, BrokerError when it refuses the login or the request.
    """
    where = safe_amqp_url(url)
    topology = build_topology(prefix)
    try:
        connection = await aio_pika.connect(
            url, timeout=10, client_properties={"connection_name": f"imageledger check {prefix}"}
        )
    except AUTHENTICATION_FAILED as exc:
        raise BrokerError(f"RabbitMQ at {where} refused login: {exc}") from exc
    except (*UNREACHABLE, TimeoutError) as exc:
        raise BrokerUnavailableError(f"cannot reach RabbitMQ at {where}: {exc}") from exc
    try:
        exchange = await exchange_exists(connection, topology.exchange)
        work = [await queue_state(connection, q.name) for q in topology.inbound]
        dead = await queue_state(connection, topology.dead_queue)
    except CONNECTION_LOST as exc:
        raise BrokerUnavailableError(f"lost RabbitMQ at {where}: {exc}") from exc
    except aio_pika.exceptions.AMQPError as exc:
        raise BrokerError(f"RabbitMQ at {where} refused: {exc}") from exc
    finally:
        await connection.close()
    return TopologyState(where, topology.exchange, exchange, tuple(work), dead)
