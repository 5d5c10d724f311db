"""Process logging: JSON lines (or plain text) on stderr, written by a background thread so the hot path
only enqueues. Each finished call is one line on the `gateway.calls` logger."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

import orjson

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _Queued(logging.handlers.QueueHandler):
    """The root handler: records go to a queue that one thread writes out."""

    listener: logging.handlers.QueueListener


def _stop(listener: logging.handlers.QueueListener) -> None:
    """Stop the writer thread once (QueueListener.stop is not idempotent)."""
    if listener._thread is not None:
        listener.stop()


def write_directly() -> None:
    """Flush the queue and write later records in the calling thread: after the app has stopped, the process may
    end by a re-raised signal (plain uvicorn does), which runs no atexit handler to flush the queue."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Queued):
            _stop(handler.listener)
            root.handlers = [h for h in root.handlers if h is not handler] + list(handler.listener.handlers)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route all logging through a queue to one stderr writer thread (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h, logging.handlers.QueueHandler) for h in root.handlers):
        return
    stream = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        stream.setFormatter(JsonFormatter())
    else:
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, stream, respect_handler_level=False)
    listener.start()
    atexit.register(_stop, listener)
    handler = _Queued(records)
    handler.listener = listener
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
