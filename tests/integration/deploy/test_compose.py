"""docker-compose.yml: valid against the Compose specification's schema (check-jsonschema ships it; no Docker
engine or image pull here), two gateway replicas from the project's Dockerfile behind nginx, Redis and PostgreSQL;
nginx accepts its config."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import ROOT

COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "infrastructure" / "compose" / "nginx.conf"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    command = [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_matches_the_compose_spec(tmp_path: Path) -> None:
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("depends_on:", "depend_on:", 1))
    assert validate(broken).returncode != 0  # the schema is strict: a misspelt key fails


def test_two_gateway_replicas_behind_nginx_with_redis_and_postgres() -> None:
    services = compose()["services"]
    gateways = [name for name, s in services.items() if s.get("build", {}).get("dockerfile") == "Dockerfile"]
    assert sorted(gateways) == ["gateway-1", "gateway-2"]
    assert (ROOT / services["gateway-1"]["build"]["context"] / "Dockerfile").is_file()
    env = services["gateway-1"]["environment"]
    assert env["REDIS_URL"].startswith("redis://redis:") and env["DATABASE_URL"].startswith("postgresql://")
    assert env["USE_SQLITE_LOG"] == "false"
    nginx_ip = services["nginx"]["networks"]["default"]["ipv4_address"]
    assert env["FORWARDED_ALLOW_IPS"] == nginx_ip  # only nginx's X-Forwarded-For is believed
    assert set(services) == {"gateway-1", "gateway-2", "nginx", "redis", "postgres"}
    assert all("ports" not in services[g] for g in gateways)  # reachable only through nginx
    upstream = NGINX.read_text()
    assert all(f"server {g}:8080" in upstream for g in gateways)  # the Dockerfile's PORT


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")  # as the production front's test
def test_nginx_accepts_the_compose_front(tmp_path: Path) -> None:
    # the replicas' names resolve only inside the compose network: check the rest with loopback in their place
    conf = tmp_path / "compose-front.conf"
    conf.write_text(NGINX.read_text().replace("gateway-1:", "127.0.0.1:").replace("gateway-2:", "127.0.0.2:"))
    (tmp_path / "logs").mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {conf};\n}}\n"
    )
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
