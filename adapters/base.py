"""What every adapter produces and consumes: upstream requests, parsed results and stream events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Endpoint(Protocol):
    """What an adapter reads of a deployment; routing's DeploymentConfig is one. Adapters import nothing of ours."""

    @property
    def base_url(self) -> str: ...

    @property
    def api_key(self) -> str | None: ...

    @property
    def provider_model_id(self) -> str: ...

    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def region(self) -> str: ...

    @property
    def reasoning(self) -> str: ...

    @property
    def thinking_switch(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ErrorFields:
    """What an upstream's error object says beside its message, where its schema has them (OpenAI's `type`,
    `code`, `param`): strings only, short and secret-free; None when the upstream did not say."""

    type: str | None = None
    code: str | None = None
    param: str | None = None


class ProtocolError(Exception):
    """The upstream answered something that does not follow its schema."""


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One HTTP request to send upstream."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One parsed stream event: an OpenAI chunk, or the end of the stream, or an in-band error (with, when the
    schema's clients want it, the upstream's own error event as `chunk`)."""

    chunk: dict[str, Any] | None = None
    done: bool = False
    error: str = ""


class Adapter(Protocol):
    """Translates one upstream schema. No I/O, retries, logging or metrics."""

    streams: bool

    def build(self, dep: Endpoint, payload: dict[str, Any], stream: bool) -> UpstreamRequest: ...

    def parse_response(self, body: bytes, request: UpstreamRequest | None = None) -> dict[str, Any]: ...

    def parse_event(self, data: bytes) -> StreamEvent: ...

    def error_message(self, status: int, body: bytes) -> str: ...

    def error_fields(self, body: bytes) -> ErrorFields: ...
