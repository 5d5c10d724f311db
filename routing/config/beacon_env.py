"""Project Beacon's environment shortcut: Golem, Modal and RunPod deployments from env vars, without models.yaml.

`GOLEM_PROVIDER_ENDPOINTS` (comma list) -> deployments `golem-1..n`, regions from `GOLEM_PROVIDER_REGIONS`
(aligned by position; a region is never guessed from a URL). `MODAL_API_BASE` (+ `MODAL_REGION`,
`MODAL_API_TOKEN`, `MODAL_HEALTH_ENDPOINT`) -> deployment `modal`. `RUNPOD_API_BASE` (the endpoint base,
`https://api.runpod.ai/v2/<endpoint_id>`; + `RUNPOD_REGION`, `RUNPOD_API_KEY`) -> deployment `runpod`. Each
deployment serves every model of `BEACON_MODELS` (default below) with `provider_model_id` = the model id; a
model that models.yaml already defines (by id or alias) gets them appended, others are created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from routing.config.schema import ConfigError, DeploymentConfig, ModelConfig, Timeouts
from routing.config.yamlread import check_url

SOURCE = "environment"
DEFAULT_MODELS = ("llama3.2-1b", "mistral-7b", "qwen2.5-1.5b")
# Non-streamed upstreams send headers only with the whole reply, and Modal/RunPod may cold-start first.
_GOLEM_TIMEOUTS = Timeouts(connect=10.0, first_token=120.0, idle=120.0, total=120.0)
_MODAL_TIMEOUTS = Timeouts(connect=10.0, first_token=300.0, idle=300.0, total=300.0)
_RUNPOD_TIMEOUTS = Timeouts(connect=10.0, first_token=150.0, idle=150.0, total=150.0)
_VARIABLES = (
    "GOLEM_PROVIDER_ENDPOINTS",
    "GOLEM_PROVIDER_REGIONS",
    "MODAL_API_BASE",
    "MODAL_REGION",
    "MODAL_HEALTH_ENDPOINT",
    "MODAL_API_TOKEN",
    "RUNPOD_API_BASE",
    "RUNPOD_REGION",
    "RUNPOD_API_KEY",
    "BEACON_MODELS",
)


def beacon_models_from_env(
    env: Mapping[str, str], existing: Sequence[ModelConfig]
) -> tuple[list[ModelConfig], list[str]]:
    """Models to add, or to replace by id (existing ones with Beacon deployments appended), and warnings."""
    get = {name: env.get(name, "").strip() for name in _VARIABLES}
    warnings = _stray(get)
    templates = _golem(get, warnings) + _modal(get, warnings) + _runpod(get, warnings)
    if not templates:
        return [], warnings
    models: dict[str, ModelConfig] = {}
    served: dict[str, str] = {}
    for model_id in _model_ids(get["BEACON_MODELS"], warnings):
        target = models.get(model_id) or _find(existing, model_id)
        public = target.id if target is not None else model_id
        if public in served:
            warnings.append(f"BEACON_MODELS: {model_id} and {served[public]} are the same model {public}; skipped")
            continue
        served[public] = model_id
        deps = [replace(t, model_id=public, provider_model_id=model_id) for t in templates]
        model = _new_model(model_id, deps) if target is None else _append(target, deps, warnings)
        models[public] = model
        warnings += [
            f"{public}: deployment {d.name} disabled: {d.disabled_reason}"
            for d in model.deployments[-len(deps) :]
            if not d.enabled
        ]
    return list(models.values()), warnings


def _golem(get: Mapping[str, str], warnings: list[str]) -> list[DeploymentConfig]:
    endpoints = _split(get["GOLEM_PROVIDER_ENDPOINTS"])
    regions = _split(get["GOLEM_PROVIDER_REGIONS"])
    deps: list[DeploymentConfig] = []
    for i, endpoint in enumerate(endpoints):
        if not endpoint:
            continue
        name = f"golem-{len(deps) + 1}"
        region = regions[i] if i < len(regions) else ""
        if not region:
            warnings.append(
                f"GOLEM_PROVIDER_REGIONS has no region for {name}; it gets none (regions are never guessed)"
            )
        url = _url(f"GOLEM_PROVIDER_ENDPOINTS[{i}]", endpoint)
        deps.append(_template(name, "golem", url, region, 0.0001, 5, _GOLEM_TIMEOUTS))
    if endpoints and len([r for r in regions if r]) > len([e for e in endpoints if e]):
        warnings.append("GOLEM_PROVIDER_REGIONS lists more regions than GOLEM_PROVIDER_ENDPOINTS has endpoints")
    return deps


def _modal(get: Mapping[str, str], warnings: list[str]) -> list[DeploymentConfig]:
    if not get["MODAL_API_BASE"]:
        return []
    url = _url("MODAL_API_BASE", get["MODAL_API_BASE"])
    if not get["MODAL_REGION"]:
        warnings.append("MODAL_REGION is not set; deployment modal gets no region")
    health = _url("MODAL_HEALTH_ENDPOINT", get["MODAL_HEALTH_ENDPOINT"]) if get["MODAL_HEALTH_ENDPOINT"] else ""
    dep = _template("modal", "modal", url, get["MODAL_REGION"], 0.0003, 10, _MODAL_TIMEOUTS)
    return [replace(dep, api_key=get["MODAL_API_TOKEN"] or None, health_path=health)]


def _runpod(get: Mapping[str, str], warnings: list[str]) -> list[DeploymentConfig]:
    if not get["RUNPOD_API_BASE"]:
        return []
    url = _url("RUNPOD_API_BASE", get["RUNPOD_API_BASE"])
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[-1] in ("run", "runsync"):
        warnings.append(f"RUNPOD_API_BASE ends with /{segments[-1]}; using the endpoint base (requests go to /runsync)")
        segments.pop()
        url = f"{parts.scheme}://{parts.netloc}/{'/'.join(segments)}".rstrip("/")
    reasons: list[str] = []
    if parts.hostname == "api.runpod.ai" and (len(segments) != 2 or segments[0] != "v2"):
        reasons.append("RUNPOD_API_BASE must be https://api.runpod.ai/v2/<endpoint_id>")
    if not get["RUNPOD_API_KEY"]:
        reasons.append("RUNPOD_API_KEY is not set")
    if not get["RUNPOD_REGION"]:
        warnings.append("RUNPOD_REGION is not set; deployment runpod gets no region")
    dep = _template("runpod", "runpod", url, get["RUNPOD_REGION"], 0.00025, 8, _RUNPOD_TIMEOUTS)
    reason = "; ".join(reasons)
    return [replace(dep, api_key=get["RUNPOD_API_KEY"] or None, enabled=not reasons, disabled_reason=reason)]


def _template(
    name: str, kind: str, url: str, region: str, cost: float, concurrent: int, timeouts: Timeouts
) -> DeploymentConfig:
    return DeploymentConfig(
        name=name,
        model_id="",
        kind=kind,
        provider=kind,
        base_url=url,
        provider_model_id="",
        weight=1.0,
        region=region,
        cost_per_second=cost,
        max_concurrent=concurrent,
        timeouts=timeouts,
    )


def _new_model(model_id: str, deps: list[DeploymentConfig]) -> ModelConfig:
    return ModelConfig(
        id=model_id,
        name=model_id,
        deployments=tuple(deps),
        context_length=8192,
        max_output_length=4096,
        description="Project Beacon model served by Golem, Modal and RunPod deployments",
        owned_by="project-beacon",
    )


def _append(model: ModelConfig, deps: list[DeploymentConfig], warnings: list[str]) -> ModelConfig:
    names = {d.name for d in model.deployments}
    added: list[DeploymentConfig] = []
    for dep in deps:
        name, n = dep.name, 2
        while name in names:
            name, n = f"{dep.name}-{n}", n + 1
        if name != dep.name:
            warnings.append(f"{model.id}: deployment {dep.name} already exists; the environment's is named {name}")
        names.add(name)
        added.append(replace(dep, name=name))
    return replace(model, deployments=(*model.deployments, *added))


def _find(models: Sequence[ModelConfig], name: str) -> ModelConfig | None:
    return next((m for m in models if m.id == name or name in m.aliases), None)


def _model_ids(raw: str, warnings: list[str]) -> list[str]:
    ids: list[str] = []
    for model_id in _split(raw) if raw else DEFAULT_MODELS:
        if model_id in ids:
            warnings.append(f"BEACON_MODELS lists {model_id} twice")
        elif model_id:
            ids.append(model_id)
    if not ids:
        raise ConfigError(SOURCE, "BEACON_MODELS", "lists no model", f"unset it or list ids, e.g. {DEFAULT_MODELS[0]}")
    return ids


def _url(variable: str, value: str) -> str:
    """Validated like a models.yaml base_url: http(s), no credentials or query; trailing slash dropped."""
    return check_url(SOURCE, variable, value)


def _split(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",")] if raw else []


def _stray(get: Mapping[str, str]) -> list[str]:
    """Warnings for settings that have no effect because their endpoint variable is unset."""
    groups = {
        "GOLEM_PROVIDER_ENDPOINTS": ("GOLEM_PROVIDER_REGIONS",),
        "MODAL_API_BASE": ("MODAL_REGION", "MODAL_HEALTH_ENDPOINT", "MODAL_API_TOKEN"),
        "RUNPOD_API_BASE": ("RUNPOD_REGION", "RUNPOD_API_KEY"),
    }
    stray = [
        f"{name} is set but {base} is not; it has no effect"
        for base, names in groups.items()
        for name in names
        if get[name] and not get[base]
    ]
    if get["BEACON_MODELS"] and not any(get[base] for base in groups):
        stray.append("BEACON_MODELS is set but no Beacon endpoint variable is; it has no effect")
    return stray
