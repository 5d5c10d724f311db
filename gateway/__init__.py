"""The HTTP edge: Starlette app, endpoints, streaming relay, errors, storage and metrics."""
