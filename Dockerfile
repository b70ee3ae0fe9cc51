FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY migrations ./migrations
ENV IMAGELEDGER_MIGRATIONS=/app/migrations
RUN pip install --no-cache-dir . && useradd --system imageledger
USER imageledger
ENTRYPOINT []
CMD ["imageledger", "run"]
