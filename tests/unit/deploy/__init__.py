"""Tests of deploy/: Kubernetes manifests, compose, the Docker image and their docs."""
