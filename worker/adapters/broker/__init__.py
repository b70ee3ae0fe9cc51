"""RabbitMQ through aio-pika: topology, connection, the batch consumer and the dead-letter queue."""
