"""GET /metrics: Prometheus text, or a compact JSON summary with `?format=json` or `Accept: application/json`."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.telemetry.metrics import Metrics


def wants_json(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt is not None:
        return fmt == "json"
    return "application/json" in request.headers.get("accept", "")


async def metrics(request: Request) -> Response:
    services = request.app.state.services
    collector: Metrics = services.metrics
    # The writer's counters live in this worker's event loop; publish them before the scrape reads the files.
    collector.set_call_log(services.call_log.counters())
    # In multiprocess mode rendering reads every worker's files: keep that off the event loop.
    if wants_json(request):
        return JSONResponse(await run_in_threadpool(collector.summary))
    body, content_type = await run_in_threadpool(collector.render)
    return Response(body, headers={"Content-Type": content_type})
