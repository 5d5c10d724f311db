"""The `gateway` command: `serve` runs it under uvicorn, `check-config` validates the config and prints the routing
table, `hash-key` makes a client key, `logs` shows the call log."""

from __future__ import annotations

import argparse
import os
import sys

from gateway.server import STARTUP_FAILURE
from gateway.settings import Settings, SettingsError
from routing.config.schema import ConfigError


def per_worker_warning(workers: int, settings: Settings) -> str:
    """What multiplies when several workers run without REDIS_URL ("" when nothing does)."""
    if workers <= 1 or settings.redis_url:
        return ""
    from routing.config.load import load_config

    example = ""
    try:
        config = load_config(settings.models_path, settings.routing_path, settings.env)
        caps = [(d.max_concurrent, d.key) for m in config.models for d in m.deployments if d.max_concurrent]
        if caps:
            cap, key = max(caps)
            example = f"; e.g. {key} max_concurrent: {cap} admits {cap * workers} calls"
    except ConfigError:
        pass  # the workers say what is wrong with it
    return (
        f"{workers} workers and no REDIS_URL: max_concurrent, rate limits, stream caps, circuits and health are "
        f"per worker, so every limit and cap admits up to {workers}x what is configured{example}. "
        "Set REDIS_URL to share them"
    )


def check_config(settings: Settings) -> int:
    from routing.config.load import load_config
    from routing.local_first import explain
    from routing.manager import RoutingManager
    from routing.strategies import LOCAL

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
        route = manager.route(model_id)
        if route is not None and route.kind == "local_first":
            local = [e.deployment for e in route.entries if e.side == LOCAL]
            for line in explain(config.routing, local):
                print(f"  {line}")
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
    serve = sub.add_parser("serve", help="run the gateway (defaults from HOST, PORT, WORKERS, GRACEFUL_TIMEOUT)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--graceful-timeout", type=float)
    sub.add_parser("check-config", help="validate config/models.yaml and routing.yaml and print the routing table")
    hasher = sub.add_parser("hash-key", help="make a client key and its GATEWAY_KEYS_FILE line (stored hashed)")
    hasher.add_argument("name", help="the key's name, as it will appear in the call log")
    hasher.add_argument("--stdin", action="store_true", help="read the key from standard input instead of generating")
    logs = sub.add_parser("logs", help="show the call log: recent calls, usage per model, errors, one conversation")
    logs.add_argument("rest", nargs=argparse.REMAINDER, help="options of the viewer (gateway logs --help)")
    args = parser.parse_args(argv)
    if args.command == "hash-key":
        return hash_key_command(args.name, sys.stdin.readline().strip() if args.stdin else "")
    if args.command == "logs":
        from gateway.calllog.viewer import main as view_logs
        from gateway.settings import ROOT, load_env

        return view_logs(args.rest, "gateway logs", load_env(ROOT), ROOT)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1 if args.command == "check-config" else STARTUP_FAILURE
    from gateway.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if args.command == "check-config":
        return check_config(settings)
    from gateway.server import ConnectionLimits, run_server

    server = settings.server
    workers = args.workers or server.workers
    if wants_multiprocess_metrics(workers):
        use_multiprocess_metrics()
    warning = per_worker_warning(workers, settings)
    if warning:
        import logging

        logging.getLogger("gateway").warning("%s", warning)
    # the workers build their settings from the environment: they must know the address they listen on
    os.environ["HOST"] = args.host or server.host
    return run_server(
        args.host or server.host,
        server.port if args.port is None else args.port,
        workers,
        server.graceful_timeout if args.graceful_timeout is None else args.graceful_timeout,
        server.forwarded_allow_ips,
        ConnectionLimits.from_settings(settings),
    )


if __name__ == "__main__":
    sys.exit(main())
