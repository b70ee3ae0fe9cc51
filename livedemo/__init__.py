"""The live demo: real registry, PostgreSQL and RabbitMQ, a worker and a simulated cluster."""
