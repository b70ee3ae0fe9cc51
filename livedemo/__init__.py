"""The live demo: real registry, PostgreSQL and RabbitMQ, a worker, imageledger kube and the
stand-in Kubernetes cluster."""
