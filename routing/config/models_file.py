"""models.yaml: public models, their aliases and their deployments."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from adapters.kinds import KINDS, kind_spec
from routing.config.envexpand import expand_tree
from routing.config.schema import ConfigError, DeploymentConfig, MockOptions, ModelConfig, Pricing, Timeouts
from routing.config.yamlread import Reader, check_url, load_yaml

_NAME = re.compile(r"^[A-Za-z0-9._@:+-]+$")
# Deployment fields a model without `route:` may give at top level for its single deployment: every field
# `_deployment` reads except `kind`/`provider` (set below), `name` (the model's display name there) and
# `pricing` (the model's pricing is already every deployment's default).
_SHORTHAND = (
    "base_url",
    "api_key",
    "provider_model_id",
    "weight",
    "region",
    "rpm",
    "tpm",
    "cost_per_second",
    "max_concurrent",
    "health_path",
    "health_check",
    "health_timeout",
    "timeouts",
    "headers",
    "mock",
)
_PRICE_FIELDS = ("prompt", "completion", "input_cache_reads", "input_cache_writes", "request", "image")


def load_models(path: Path, env: Mapping[str, str]) -> tuple[list[ModelConfig], list[tuple[str, str]], list[str]]:
    """Parse models.yaml into models, (alias, model id) pairs and warnings."""
    file = str(path)
    raw = load_yaml(path, "MODELS_CONFIG")
    if raw is None:
        raise ConfigError(file, "", "file is empty", "add a `models:` list")
    missing: dict[str, tuple[str, ...]] = {}
    top = Reader(file, "", expand_tree(raw, env, missing))
    entries = top.items("models")
    if not entries:
        raise top.fail("models", "must list at least one model", "add `models:` with `- id: ...` entries")
    models: list[ModelConfig] = []
    aliases: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    warnings: list[str] = []
    for i, entry in enumerate(entries):
        model = _model(Reader(file, f"models[{i}]", entry), missing, env, warnings)
        for name in (model.id, *model.aliases):
            if name in seen:
                raise ConfigError(
                    file, f"models[{i}]", f"{name!r} is already used by {seen[name]}", "give every id and alias once"
                )
            seen[name] = f"models[{i}] ({model.id})"
        models.append(model)
        aliases.extend((alias, model.id) for alias in model.aliases)
    return models, aliases, warnings


def _pricing(reader: Reader, base: Pricing) -> Pricing:
    if not reader.has("pricing"):
        return base
    p = reader.child("pricing")
    values = {name: p.number(name, getattr(base, name) or 0.0, 0.0) for name in _PRICE_FIELDS}
    for name in ("input_cache_reads", "input_cache_writes"):
        if not p.has(name):
            values[name] = getattr(base, name)
    return Pricing(**values)


def _timeouts(reader: Reader) -> Timeouts:
    t = reader.child("timeouts")
    d = Timeouts()
    return Timeouts(
        connect=t.number("connect", d.connect, 0.01),
        first_token=t.number("first_token", d.first_token, 0.01),
        idle=t.number("idle", d.idle, 0.01),
        total=t.number("total", d.total, 0.01),
    )


def _model(m: Reader, missing: dict[str, tuple[str, ...]], env: Mapping[str, str], warnings: list[str]) -> ModelConfig:
    model_id = m.text("id")
    pricing = _pricing(m, Pricing())
    aliases = tuple(a for a in m.strings("aliases") if a != model_id)
    routes = m.items("route")
    if not routes:
        if not m.has("provider") and not m.has("kind"):
            raise m.fail(
                "route", "is missing and there is no top-level `provider`", "add a `route:` list of deployments"
            )
        routes = [{k: m.data[k] for k in _SHORTHAND if k in m.data}]
        routes[0]["kind"] = m.data.get("kind") or m.data.get("provider")
        route_path, single = m.path, True
    else:
        route_path, single = f"{m.path}.route", False
    deployments: list[DeploymentConfig] = []
    names: set[str] = set()
    for j, route in enumerate(routes):
        r = Reader(m.file, route_path if single else f"{route_path}[{j}]", route)
        dep = _deployment(r, m, model_id, pricing, missing, env)
        name, n = dep.name, 2
        while name in names:
            name, n = f"{dep.name}-{n}", n + 1
        names.add(name)
        deployments.append(_replace_name(dep, name))
        if not dep.enabled:
            warnings.append(f"{model_id}: deployment {name} disabled: {dep.disabled_reason}")
    if not any(d.weight > 0 for d in deployments if d.enabled) and any(d.enabled for d in deployments):
        warnings.append(f"{model_id}: every enabled deployment has weight 0; traffic is split equally")
    return ModelConfig(
        id=model_id,
        name=m.text("name", model_id),
        deployments=tuple(deployments),
        aliases=aliases,
        context_length=m.integer("context_length", 8192, 1),
        max_output_length=m.integer("max_output_length", 4096, 1),
        pricing=pricing,
        supported_params=m.strings("supported_params"),
        input_modalities=m.strings("input_modalities") or ("text",),
        output_modalities=m.strings("output_modalities") or ("text",),
        quantization=m.text("quantization", "bf16"),
        description=m.text("description", ""),
        owned_by=m.text("owned_by", ""),
        created=m.integer("created", 0),
        strategy=m.text("strategy", ""),
        rpm=m.integer("rpm", 0),
        tpm=m.integer("tpm", 0),
    )


def _deployment(
    r: Reader, m: Reader, model_id: str, pricing: Pricing, missing: dict[str, tuple[str, ...]], env: Mapping[str, str]
) -> DeploymentConfig:
    kind = r.text("kind")
    spec = kind_spec(kind)
    if spec is None:
        raise r.fail("kind", f"unknown kind {kind!r}", f"use one of: {', '.join(sorted(KINDS))}")
    reasons: list[str] = []
    url_missing = missing.get(r.at("base_url"), ())
    base_url = r.text("base_url", "") or spec.default_base_url
    if url_missing:
        reasons.append(f"base_url needs {', '.join(url_missing)}, which is not set")
    elif not base_url:
        raise r.fail("base_url", f"is required for kind {kind!r}", "add `base_url: http://host:port/v1`")
    elif not spec.in_process:
        base_url = check_url(r, "base_url", base_url)
    api_key = r.text("api_key", "").strip() or None
    key_missing = missing.get(r.at("api_key"), ())
    if spec.key_required and not api_key:
        reasons.append(f"api_key needs {', '.join(key_missing)}, which is not set" if key_missing else "no api_key")
    weight = r.number("weight", 1.0, 0.0)
    provider = r.text("provider", spec.provider) if r.path != m.path else spec.provider
    tpm = r.integer("tpm", 0) or _env_tpm(r, provider, env)
    mock = r.child("mock")
    return DeploymentConfig(
        name=_default_name(r, spec.provider, base_url, spec.in_process),
        model_id=model_id,
        kind=kind,
        provider=provider,
        base_url=base_url,
        provider_model_id=r.text("provider_model_id", m.text("provider_model_id", model_id)),
        weight=weight,
        api_key=api_key,
        enabled=not reasons,
        disabled_reason="; ".join(reasons),
        pricing=_pricing(r, pricing),
        timeouts=_timeouts(r),
        region=r.text("region", ""),
        cost_per_second=r.number("cost_per_second", 0.0, 0.0),
        max_concurrent=r.integer("max_concurrent", 0),
        rpm=r.integer("rpm", 0),
        tpm=tpm,
        health_path=r.text("health_path", ""),
        health_interval=r.number("health_check", 0.0, 0.0),
        health_timeout=_health_timeout(r),
        headers=tuple((str(k), str(v)) for k, v in r.child("headers").data.items()),
        mock=MockOptions(
            ttft_ms=mock.number("ttft_ms", 0.0, 0.0),
            chunk_delay_ms=mock.number("chunk_delay_ms", 0.0, 0.0),
            completion_tokens=mock.integer("completion_tokens", 16, 1),
            reply=mock.text("reply", ""),
        ),
    )


def _env_tpm(r: Reader, provider: str, env: Mapping[str, str]) -> int:
    """The `<PROVIDER>_TPM_LIMIT` default for a deployment that sets no `tpm` (0 when unset)."""
    name = f"{provider.upper()}_TPM_LIMIT"
    value = env.get(name, "").strip()
    if not value:
        return 0
    try:
        tpm = int(value)
    except ValueError:
        tpm = -1
    if tpm < 0:
        raise r.fail(
            "tpm", f"environment variable {name}={value!r} must be a whole number >= 0", f"fix or unset {name}"
        )
    return tpm


def _health_timeout(r: Reader) -> float:
    # 0 (or absent) means routing.yaml's `timeout`; a probe that may not wait at all would always fail
    value = r.number("health_timeout", 0.0, 0.0)
    if 0 < value < 0.01:
        raise r.fail(
            "health_timeout",
            f"must be 0 (use routing.yaml timeout) or >= 0.01 s, got {value:g}",
            "write e.g. `health_timeout: 2`",
        )
    return value


def _default_name(r: Reader, provider: str, base_url: str, in_process: bool) -> str:
    if r.has("name"):
        name = r.text("name")
        if not _NAME.match(name):
            raise r.fail("name", f"{name!r} has characters other than letters, digits and ._@:+-", "rename it")
        return name
    if in_process or not base_url:
        return provider
    return f"{provider}@{urlsplit(base_url).netloc}"


def _replace_name(dep: DeploymentConfig, name: str) -> DeploymentConfig:
    return dep if dep.name == name else replace(dep, name=name)
