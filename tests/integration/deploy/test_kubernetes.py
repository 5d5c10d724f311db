"""infrastructure/kubernetes/: every manifest validates against the Kubernetes schemas (kubernetes-validate ships
them, so this runs offline), strictly; the Deployment has what issue 14 asks; the ConfigMap's files are a config
`gateway check-config` accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from gateway.settings import ROOT
from tests.support.gateway import ProcessGateway

K8S = ROOT / "infrastructure" / "kubernetes"
VERSION = "1.30"  # the oldest Kubernetes these manifests are for: the schema of each kind as of then


def manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


@pytest.mark.parametrize(("name", "doc"), manifests(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_manifest_matches_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    # strict: an unknown field (a typo kubectl would drop or refuse) fails; a kind without a schema raises too
    assert kubernetes_validate.validate(doc, VERSION, strict=True) == VERSION


def test_the_validator_rejects_a_typo() -> None:
    deployment = by_kind("Deployment")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted({name for name, _ in manifests()})


def test_the_deployment_drains_before_sigterm_and_probes_ready() -> None:
    (deployment,) = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/ready"  # not /health: see the manifest's comment
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    # the pod gets its preStop delay plus the gateway's GRACEFUL_TIMEOUT before the kubelet kills it
    (env_map,) = [c for c in by_kind("ConfigMap") if c["metadata"]["name"] == "hybrid-gateway-env"]
    assert pod["terminationGracePeriodSeconds"] > 10 + int(env_map["data"]["GRACEFUL_TIMEOUT"])
    assert {"requests", "limits"} <= set(container["resources"])
    assert container["ports"][0]["containerPort"] == 8080  # the Dockerfile's PORT
    secrets = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"DATABASE_URL", "ADMIN_API_KEY", "DEEPSEEK_API_KEY", "GEMINI_API_KEY"} <= secrets
    assert not any("value" in e and "KEY" in e["name"] for e in container["env"]), "a key written in a manifest"
    assert "KEY" not in " ".join(env_map["data"]) and "PASSWORD" not in " ".join(env_map["data"])
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    (pdb,) = by_kind("PodDisruptionBudget")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (pdb["spec"]["selector"]["matchLabels"], by_kind("Service")[0]["spec"]["selector"]):
        assert selector.items() <= labels.items()


def test_the_configmap_holds_a_config_the_gateway_accepts(tmp_path: Path) -> None:
    (files,) = [c for c in by_kind("ConfigMap") if c["metadata"]["name"] == "hybrid-gateway-config"]
    for name, text in files["data"].items():
        (tmp_path / name).write_text(text)
    (env_map,) = [c for c in by_kind("ConfigMap") if c["metadata"]["name"] == "hybrid-gateway-env"]
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env = {
        **keep,
        **env_map["data"],
        "MODELS_CONFIG": str(tmp_path / "models.yaml"),
        "ROUTING_CONFIG": str(tmp_path / "routing.yaml"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mock-gpt" in result.stdout and "llama-3.3-70b-instruct" in result.stdout


def test_a_pod_with_the_configmaps_serves_and_passes_its_probes(tmp_path: Path) -> None:
    """`gateway serve` with the ConfigMaps' settings and files (Redis and PostgreSQL left out: they are the
    cluster's): the kubelet's probe, which names the pod's IP as Host, gets 200, and the mock model answers."""
    (files,) = [c for c in by_kind("ConfigMap") if c["metadata"]["name"] == "hybrid-gateway-config"]
    for name, text in files["data"].items():
        (tmp_path / name).write_text(text)
    (env_map,) = [c for c in by_kind("ConfigMap") if c["metadata"]["name"] == "hybrid-gateway-env"]
    env = {k: v for k, v in env_map["data"].items() if k not in ("REDIS_URL", "WORKERS")}
    env |= {"MODELS_CONFIG": str(tmp_path / "models.yaml"), "ROUTING_CONFIG": str(tmp_path / "routing.yaml")}
    # /app/var is an emptyDir: the image's var/prometheus is not there at start, `gateway serve` must create it
    env |= {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "var" / "prometheus"),
        "CALL_LOG_SPOOL_DIR": str(tmp_path / "spool"),
    }
    with ProcessGateway(env) as gw:
        probe = httpx.get(f"{gw.url}/ready", headers={"Host": "10.244.1.7:8080"}, timeout=10)
        assert probe.status_code == 200, probe.text
        body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers={"Host": "gateway.example.com"})
        assert reply.status_code == 200, reply.text
        assert httpx.get(f"{gw.url}/health", timeout=10).json()["models_servable"] >= 1
