"""RabbitMQ through aio-pika: topology, connection, the batch consumer and the dead-letter queue.

The package face: callers outside it import from here, never from its modules.
"""

from worker.adapters.broker.connection import Broker, safe_amqp_url
from worker.adapters.broker.dead_letters import DeadLetter, DeadLetterQueue, ReplayReport
from worker.adapters.broker.inspect import TopologyState, probe_topology
from worker.adapters.broker.topology import (
    BrokerError,
    BrokerSettings,
    BrokerUnavailableError,
    QueueState,
    amqp_url,
)

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerSettings",
    "BrokerUnavailableError",
    "DeadLetter",
    "DeadLetterQueue",
    "QueueState",
    "ReplayReport",
    "TopologyState",
    "amqp_url",
    "probe_topology",
    "safe_amqp_url",
]
