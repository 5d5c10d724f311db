"""models.yaml: public models, their aliases and their deployments.

`ModelsFile` (models_schema.py) checks keys, types and bounds; this module applies what needs more than one
field or the environment: kinds and their URLs, deployments disabled by unset variables, the route-less
shorthand, deployment names and `<PROVIDER>_TPM_LIMIT`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from adapters.kinds import KINDS, kind_spec
from routing.config.envexpand import expand_tree
from routing.config.fields import strings
from routing.config.models_schema import (
    ENGINES,
    NAME_PATTERN,
    SHORTHAND_ONLY,
    DeploymentFields,
    DeploymentFile,
    ModelFile,
    ModelsFile,
    PricingFile,
)
from routing.config.schema import ConfigError, DeploymentConfig, MockOptions, ModelConfig, Pricing, Timeouts
from routing.config.urls import origin
from routing.config.validate import validate
from routing.config.yamlread import check_url, load_yaml

_NAME = re.compile(NAME_PATTERN)
_NO_MODELS = ("must list at least one model", "add `models:` with `- id: ...` entries")
_SPECIAL = {("models", "missing"): _NO_MODELS, ("models", "too_short"): _NO_MODELS}
Missing = dict[str, tuple[str, ...]]

# kinds whose upstream serves /v1/responses itself
_NATIVE_RESPONSES = frozenset({"openai", "vllm"})


def load_models(path: Path, env: Mapping[str, str]) -> tuple[list[ModelConfig], list[tuple[str, str]], list[str]]:
    """Parse models.yaml into models, (alias, model id) pairs and warnings."""
    file = str(path)
    raw = load_yaml(path, "MODELS_CONFIG")
    if raw is None:
        raise ConfigError(file, "", "file is empty", "add a `models:` list")
    missing: Missing = {}
    parsed = validate(ModelsFile, expand_tree(raw, env, missing), file, _SPECIAL)
    models: list[ModelConfig] = []
    aliases: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    warnings: list[str] = []
    for i, entry in enumerate(parsed.models):
        model = _model(file, f"models[{i}]", entry, missing, env, warnings)
        for name in (model.id, *model.aliases):
            if name in seen:
                raise ConfigError(
                    file, f"models[{i}]", f"{name!r} is already used by {seen[name]}", "give every id and alias once"
                )
            seen[name] = f"models[{i}] ({model.id})"
        models.append(model)
        aliases.extend((alias, model.id) for alias in model.aliases)
    return models, aliases, warnings


def _model(
    file: str, path: str, m: ModelFile, missing: Missing, env: Mapping[str, str], warnings: list[str]
) -> ModelConfig:
    pricing = _pricing(m.pricing, Pricing())
    deployments: list[DeploymentConfig] = []
    names: set[str] = set()
    for dep in _deployments(file, path, m, pricing, missing, env):
        name, n = dep.name, 2
        while name in names:
            name, n = f"{dep.name}-{n}", n + 1
        names.add(name)
        deployments.append(dep if dep.name == name else replace(dep, name=name))
        if not dep.enabled:
            warnings.append(f"{m.id}: deployment {name} disabled: {dep.disabled_reason}")
    if not any(d.weight > 0 for d in deployments if d.enabled) and any(d.enabled for d in deployments):
        warnings.append(f"{m.id}: every enabled deployment has weight 0; traffic is split equally")
    return ModelConfig(
        id=m.id,
        name=m.name or m.id,
        deployments=tuple(deployments),
        aliases=tuple(a for a in strings(m.aliases) if a != m.id),
        context_length=m.context_length,
        max_output_length=m.max_output_length,
        pricing=pricing,
        supported_params=strings(m.supported_params),
        input_modalities=strings(m.input_modalities) or ("text",),
        output_modalities=strings(m.output_modalities) or ("text",),
        quantization=m.quantization,
        description=m.description,
        owned_by=m.owned_by,
        created=m.created,
        strategy=m.strategy,
        rpm=m.rpm,
        tpm=m.tpm,
        endpoints=_endpoints(file, path, m, deployments),
    )


def _endpoints(file: str, path: str, m: ModelFile, deployments: list[DeploymentConfig]) -> tuple[str, ...]:
    """What the model serves; embeddings only from deployments that speak OpenAI's schema over the network."""
    endpoints = tuple(dict.fromkeys(m.endpoints))
    if "embeddings" in endpoints:
        for j, dep in enumerate(deployments):
            spec = kind_spec(dep.kind)
            if spec is None or spec.schema != "openai" or spec.in_process:
                raise ConfigError(
                    file,
                    f"{path}.route[{j}].kind" if m.route else f"{path}.kind",
                    f"kind {dep.kind!r} cannot serve embeddings",
                    "use an OpenAI-compatible kind (openai, vllm, gemini...) or drop `embeddings` from `endpoints`",
                )
    return endpoints


def _deployments(
    file: str, path: str, m: ModelFile, pricing: Pricing, missing: Missing, env: Mapping[str, str]
) -> list[DeploymentConfig]:
    if not m.route:
        # the shorthand: the model's own `provider` (or `kind`) and deployment keys make its one deployment
        key = "kind" if m.kind else "provider"
        if not m.kind and not m.provider:
            raise ConfigError(
                file,
                f"{path}.route",
                "is missing and there is no top-level `provider`",
                "add a `route:` list of deployments",
            )
        site = _Site(file, path, key, m.kind or m.provider, "", "", pricing)
        return [_deployment(site, m, m, missing, env)]
    stray = [key for key in (*SHORTHAND_ONLY, "kind", "provider") if key in m.model_fields_set]
    if stray:
        raise ConfigError(
            file,
            f"{path}.{stray[0]}",
            "applies only to a model without `route:`",
            f"move `{stray[0]}` into the `route:` entries, or remove it",
        )
    return [
        _deployment(
            _Site(file, f"{path}.route[{j}]", "kind", r.kind, r.provider, r.name, _own_pricing(r, pricing)),
            r,
            m,
            missing,
            env,
        )
        for j, r in enumerate(m.route)
    ]


@dataclass(frozen=True, slots=True)
class _Site:
    """Where a deployment is written, and the keys only a `route:` entry has (empty in the shorthand)."""

    file: str
    path: str
    kind_key: str  # the key that named the kind: `kind`, or a shorthand model's `provider`
    kind: str
    provider: str
    name: str
    pricing: Pricing

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def fail(self, key: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(self.file, self.at(key), problem, fix)


def _deployment(
    site: _Site, d: DeploymentFields, m: ModelFile, missing: Missing, env: Mapping[str, str]
) -> DeploymentConfig:
    spec = kind_spec(site.kind)
    if spec is None:
        raise site.fail(site.kind_key, f"unknown kind {site.kind!r}", f"use one of: {', '.join(sorted(KINDS))}")
    reasons: list[str] = []
    url_missing = missing.get(site.at("base_url"), ())
    base_url = d.base_url or spec.default_base_url
    if url_missing:
        reasons.append(f"base_url needs {', '.join(url_missing)}, which is not set")
    elif not base_url:
        raise site.fail("base_url", f"is required for kind {site.kind!r}", "add `base_url: http://host:port/v1`")
    elif not spec.in_process:
        base_url = check_url(site.file, site.at("base_url"), base_url)
    api_key = d.api_key.strip() or None
    key_missing = missing.get(site.at("api_key"), ())
    if spec.key_required and not api_key:
        reasons.append(f"api_key needs {', '.join(key_missing)}, which is not set" if key_missing else "no api_key")
    provider = site.provider or spec.provider
    return DeploymentConfig(
        name=_name(site, spec.provider, base_url, spec.in_process),
        model_id=m.id,
        kind=site.kind,
        provider=provider,
        base_url=base_url,
        provider_model_id=d.provider_model_id or m.provider_model_id or m.id,
        weight=d.weight,
        api_key=api_key,
        enabled=not reasons,
        disabled_reason="; ".join(reasons),
        pricing=site.pricing,
        timeouts=Timeouts(**d.timeouts.model_dump()),
        region=d.region,
        cost_per_second=d.cost_per_second,
        max_concurrent=d.max_concurrent,
        rpm=d.rpm,
        tpm=d.tpm or _env_tpm(site, provider, env),
        health_path=d.health_path,
        health_interval=d.health_check,
        health_timeout=_health_timeout(site, d.health_timeout),
        headers=tuple(d.headers.items()),
        mock=MockOptions(**d.mock.model_dump()),
        data_collection=d.data_collection or "",
        zdr=d.zdr,
        quantization=d.quantization.strip() if isinstance(d, DeploymentFile) else "",
        completions=_completions(site, d.completions, spec.native_completions, spec.schema),
        reasoning=d.reasoning or spec.reasoning,
        thinking_switch=d.thinking_switch,
        messages=d.messages or "",
        responses=d.responses or ("native" if site.kind in _NATIVE_RESPONSES else "translate"),
        metrics_url=_metrics_url(site, d, base_url, spec.local and not spec.in_process) if not reasons else "",
        engine=_engine(site, d.engine),
    )


def _metrics_url(site: _Site, d: DeploymentFields, base_url: str, local: bool) -> str:
    """The engine's Prometheus endpoint: as given ("none" disables), else `{origin}/metrics` for local engines."""
    value = d.metrics_url.strip()
    if value.lower() == "none" or not base_url or (not value and not local):
        return ""
    if value and not value.startswith("/"):
        return check_url(site.file, site.at("metrics_url"), value)
    try:
        root = origin(base_url)
    except ValueError:  # a base_url urllib cannot split (port out of range) cannot be scraped either
        return ""
    return f"{root}{value or '/metrics'}"


def _engine(site: _Site, value: str) -> str:
    if value and value not in ENGINES:
        raise site.fail("engine", f"unknown engine {value!r}", f"use one of: {', '.join(ENGINES)}")
    return value or "vllm"


def _own_pricing(d: DeploymentFile, model: Pricing) -> Pricing:
    """A deployment's own price wins over its model's (routing/price.py): its own `pricing` (over the model's,
    price by price), else its `cost_per_second` (no token price: it is billed by the second), else the model's."""
    if any(value is not None for _, value in d.pricing):
        return _pricing(d.pricing, model)
    return Pricing() if d.cost_per_second > 0 else model


def _completions(site: _Site, value: str | None, native: bool, schema: str) -> str:
    """How the deployment serves `/v1/completions`: natively by default where its kind does, else by translation."""
    if value == "native" and schema != "openai":
        raise site.fail(
            "completions", f"kind {site.kind!r} has no /v1/completions of its own", "use `completions: translate`"
        )
    return value or ("native" if native else "translate")


def _pricing(p: PricingFile, base: Pricing) -> Pricing:
    """Prices given here over the ones of `base` (a deployment's over its model's)."""
    return Pricing(**{name: getattr(base, name) if value is None else value for name, value in p})


def _env_tpm(site: _Site, provider: str, env: Mapping[str, str]) -> int:
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
        raise site.fail(
            "tpm", f"environment variable {name}={value!r} must be a whole number >= 0", f"fix or unset {name}"
        )
    return tpm


def _health_timeout(site: _Site, value: float) -> float:
    # 0 (or absent) means routing.yaml's `timeout`; a probe that may not wait at all would always fail
    if 0 < value < 0.01:
        raise site.fail(
            "health_timeout",
            f"must be 0 (use routing.yaml timeout) or >= 0.01 s, got {value:g}",
            "write e.g. `health_timeout: 2`",
        )
    return value


def _name(site: _Site, provider: str, base_url: str, in_process: bool) -> str:
    if site.name:
        if not _NAME.match(site.name):
            raise site.fail("name", f"{site.name!r} has characters other than letters, digits and ._@:+-", "rename it")
        return site.name
    if in_process or not base_url:
        return provider
    return f"{provider}@{urlsplit(base_url).netloc}"
