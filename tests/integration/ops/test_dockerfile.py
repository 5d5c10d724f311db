"""The Dockerfile cannot be built here (no Docker engine); check what can be checked without one."""

from __future__ import annotations

from gateway.settings import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_dockerfile_essentials() -> None:
    assert "--require-hashes -r requirements.runtime.lock" in DOCKERFILE
    assert (ROOT / "requirements.runtime.lock").is_file()
    assert "USER gateway" in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE and "/ready" in DOCKERFILE
    assert "exec python -m gateway serve" in DOCKERFILE
    for path in ("gateway", "adapters", "routing", "config"):
        assert f"COPY {path} ./{path}" in DOCKERFILE
    assert ".env" in (ROOT / ".dockerignore").read_text()
