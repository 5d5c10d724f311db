"""`gateway serve` runs the gateway under uvicorn; `gateway check-config` validates and prints the routing table."""

from __future__ import annotations

import argparse
import os
import sys

from gateway.settings import Settings
from routing.config.schema import ConfigError


def _configure_logging() -> None:
    from gateway.logs import configure_logging

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json").lower())


def check_config(settings: Settings) -> int:
    from routing.config.load import load_config
    from routing.manager import RoutingManager

    try:
        config = load_config(settings.models_path, settings.routing_path, settings.env)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 1
    manager = RoutingManager(config)
    print(f"models:  {config.models_source}")
    print(f"routing: {config.routing.source or '(none: models.yaml weights)'}  strategy={config.routing.strategy}")
    for warning in config.warnings:
        print(f"warning: {warning}")
    snapshot = manager.snapshot()
    for model_id, info in snapshot["models"].items():
        served = "" if info["served"] else "  (not served: no enabled deployment)"
        print(f"\n{model_id}  [{info['strategy'] or '-'}]{served}")
        for row in info["deployments"]:
            state = "enabled" if row["enabled"] else f"DISABLED: {row['reason']}"
            print(f"  {row['percent']:>7}  {row['deployment']:<40} {row['side']:<7} {row['kind']:<9} {state}")
    return 0


def wants_multiprocess_metrics(workers: int) -> bool:
    """Several workers share metrics through files, and so does one worker when the env var asks for it."""
    from gateway.telemetry.metrics import MULTIPROC_ENV

    # The Dockerfile and the systemd unit set the variable whatever WORKERS is; prometheus_client then writes
    # files even in a single worker, so the directory must exist and earlier runs' files must go.
    return workers > 1 or bool(os.environ.get(MULTIPROC_ENV))


def use_multiprocess_metrics() -> None:
    """Create the metrics directory, emptied of earlier runs' files, and export it before any worker starts."""
    from gateway.settings import ROOT
    from gateway.telemetry.metrics import MULTIPROC_ENV, prepare_multiproc_dir

    path = os.environ.get(MULTIPROC_ENV) or str(ROOT / "var" / "prometheus")
    prepare_multiproc_dir(path)
    os.environ[MULTIPROC_ENV] = path


def hash_key_command(name: str, key: str) -> int:
    import secrets

    from gateway.access import hash_key

    if not name or " " in name:
        print("the key name must be one word", file=sys.stderr)
        return 2
    generated = not key
    key = key or f"sk-gw-{secrets.token_urlsafe(32)}"
    if generated:
        print(f"key (shown once, give it to the client): {key}", file=sys.stderr)
    print(f"{name} sha256:{hash_key(key)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="Hybrid LLM inference gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    serve.add_argument("--graceful-timeout", type=float, default=float(os.environ.get("GRACEFUL_TIMEOUT", "30")))
    sub.add_parser("check-config", help="validate config/models.yaml and routing.yaml and print the routing table")
    hasher = sub.add_parser("hash-key", help="make a client key and its GATEWAY_KEYS_FILE line (stored hashed)")
    hasher.add_argument("name", help="the key's name, as it will appear in the call log")
    hasher.add_argument("--stdin", action="store_true", help="read the key from standard input instead of generating")
    args = parser.parse_args(argv)
    _configure_logging()
    if args.command == "check-config":
        return check_config(Settings.from_env())
    if args.command == "hash-key":
        return hash_key_command(args.name, sys.stdin.readline().strip() if args.stdin else "")
    from gateway.server import run_server

    if wants_multiprocess_metrics(args.workers):
        use_multiprocess_metrics()
    os.environ["GATEWAY_CONFIGURE_LOGGING"] = "1"  # worker processes configure their own logging at start-up
    return run_server(
        args.host, args.port, args.workers, args.graceful_timeout, os.environ.get("FORWARDED_ALLOW_IPS", "").strip()
    )


if __name__ == "__main__":
    sys.exit(main())
