# The imageledger image: `imageledger run` by default (the worker; port 8080), also
# `imageledger migrate`, `imageledger kube` and every other command. Python packages are
# pinned by constraints.txt (the build backend too, through PIP_CONSTRAINT), so the image
# builds the same tomorrow. It runs as the numeric user 10001 (Kubernetes' runAsNonRoot
# can only check a numeric user).
FROM python:3.11-slim-bookworm AS runtime
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IMAGELEDGER_MIGRATIONS=/app/migrations
COPY constraints.txt pyproject.toml README.md ./
COPY worker ./worker
COPY migrations ./migrations
COPY deploy/docker/entrypoint.sh /usr/local/bin/imageledger-entrypoint
RUN PIP_CONSTRAINT=/app/constraints.txt pip install --no-cache-dir -c constraints.txt . \
    && groupadd --system --gid 10001 imageledger \
    && useradd --system --uid 10001 --gid 10001 --no-create-home imageledger
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["imageledger-entrypoint"]
CMD ["imageledger", "run"]

# The local stack's extras (compose.yaml): the demo's sample repository, the test pusher
# that seeds the registry, and the stand-in Kubernetes API server that plays the cluster
# for imageledger kube. Not for production.
FROM runtime AS demo
COPY livedemo ./livedemo
COPY tests/__init__.py ./tests/__init__.py
COPY tests/support/__init__.py tests/support/push.py ./tests/support/
COPY tests/support/kube ./tests/support/kube

# The default target: the runtime image alone.
FROM runtime
