# The gateway in a container. Runtime dependencies only, hash-checked; runs as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app \
    PORT=8080 WORKERS=2 PROMETHEUS_MULTIPROC_DIR=/app/var/prometheus
WORKDIR /app

COPY requirements.runtime.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.runtime.lock

COPY gateway ./gateway
COPY adapters ./adapters
COPY routing ./routing
COPY config ./config
COPY scripts ./scripts
RUN useradd --system --uid 10001 --home-dir /app gateway \
    && mkdir -p var/db var/spool var/prometheus && chown -R gateway:gateway var

USER gateway
EXPOSE 8080
VOLUME ["/app/var"]

# /ready is cheap and says the process serves; /health says whether any deployment can (see README).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('PORT', '8080'), timeout=4)"

# exec: the gateway gets SIGTERM directly and drains in-flight streams before exiting.
CMD ["sh", "-c", "exec python -m gateway serve --host 0.0.0.0 --port \"$PORT\" --workers \"$WORKERS\""]
