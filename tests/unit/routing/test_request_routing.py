"""The `provider` object's pure parts: what narrows, what reorders, what is dropped, what is refused."""

from __future__ import annotations

import pytest

from gateway.errors import APIError
from gateway.openai.routing_fields import provider_routing, split_variant
from routing.config.schema import DeploymentConfig, ModelConfig, Pricing
from routing.request_routing import (
    MaxPrice,
    NoMatch,
    ProviderRouting,
    narrow,
    reorder,
    sent_parameters,
    unsupported_dropped,
)
from routing.strategies import Observed


def dep(name: str, provider: str, kind: str = "openai", **kw: object) -> DeploymentConfig:
    return DeploymentConfig(name, "m", kind, provider, f"http://{name}/v1", "x", 1.0, **kw)  # type: ignore[arg-type]


GPU = dep("gpu", "ours", "vllm", pricing=Pricing(0.1, 0.1))
A = dep("a", "alpha", pricing=Pricing(1, 2))
B = dep("b", "beta", pricing=Pricing(3, 4), quantization="fp8")
NODE = dep("node", "golem", "golem", cost_per_second=0.0001)
MODEL = ModelConfig("m", "M", (GPU, A, B, NODE), quantization="bf16", supported_params=("temperature",))
ALL = [GPU, A, B, NODE]


def names(deps: list[DeploymentConfig]) -> list[str]:
    return [d.name for d in deps]


def test_filters_keep_what_matches_and_name_what_emptied_the_list() -> None:
    def kept(wants: ProviderRouting) -> list[str]:
        return names(narrow(ALL, MODEL, wants, set(), lambda d: False))

    assert kept(ProviderRouting(only=("ALPHA", "b"))) == ["a", "b"]  # provider or name, any case
    assert kept(ProviderRouting(ignore=("vllm",))) == ["a", "b", "node"]  # the kind too
    assert kept(ProviderRouting(data_collection="deny")) == ["gpu"]
    assert kept(ProviderRouting(quantizations=("bf16",))) == ["gpu", "a", "node"]  # the model's when unset
    # a per-second price is 1 USD per 1M tokens at 100 tokens/s
    assert kept(ProviderRouting(max_price=MaxPrice(prompt=1.0, completion=2.0))) == ["gpu", "a", "node"]
    with pytest.raises(NoMatch, match=r"provider\.only"):
        narrow(ALL, MODEL, ProviderRouting(only=("x",)), set(), lambda d: False)
    with pytest.raises(NoMatch, match="supports tools"):
        narrow(ALL, MODEL, ProviderRouting(require_parameters=True), {"tools"}, lambda d: False)
    local = narrow(ALL, MODEL, ProviderRouting(zdr=True), set(), lambda d: d.name == "node")
    assert names(local) == ["gpu", "node"]  # routing.yaml's local ones keep no data either


def test_reorder_sorts_then_orders_and_allow_fallbacks_false_keeps_the_primary() -> None:
    seen = {"a": Observed(ttft_ms=50, tokens_per_second=10), "b": Observed(ttft_ms=20, tokens_per_second=90)}

    def measured(d: DeploymentConfig) -> Observed:
        return seen.get(d.name, Observed())

    assert names(reorder(ALL, ProviderRouting(sort="price"), measured)) == ["gpu", "node", "a", "b"]
    assert names(reorder(ALL, ProviderRouting(sort="latency"), measured)) == ["b", "a", "gpu", "node"]
    assert names(reorder(ALL, ProviderRouting(sort="throughput"), measured)) == ["b", "a", "gpu", "node"]
    assert names(reorder(ALL, ProviderRouting(sort="price", order=("beta",)), measured)) == ["b", "gpu", "node", "a"]
    assert names(reorder(ALL, ProviderRouting(preferred_max_latency=0.03), measured)) == ["gpu", "b", "node", "a"]
    assert names(reorder(ALL, ProviderRouting(allow_fallbacks=False), measured)) == ["gpu"]


def test_parameters_a_model_does_not_list_are_dropped_for_it() -> None:
    payload = {"messages": [], "temperature": 0.2, "tools": [{}], "max_completion_tokens": 5, "x_custom": 1}
    assert sent_parameters(payload) == {"temperature", "tools", "max_tokens"}
    assert unsupported_dropped(MODEL, payload) == {"messages": [], "temperature": 0.2, "x_custom": 1}
    undeclared = ModelConfig("n", "N", (A,))
    assert unsupported_dropped(undeclared, payload) is payload  # declares nothing: sent everything


def test_variants_and_bad_fields() -> None:
    assert split_variant("llama:nitro") == ("llama", "throughput")
    assert split_variant("llama3.2:1b") == ("llama3.2:1b", "")
    assert provider_routing({}, "price") == ProviderRouting(sort="price")
    assert provider_routing({}, "") is None
    for provider, param in (
        ({"sort": "fastest"}, "provider.sort"),
        ({"sort": {"by": "price", "partition": "none"}}, "provider.sort.partition"),
        ({"only": "alpha"}, "provider.only"),
        ({"max_price": {"prompt": -1}}, "provider.max_price.prompt"),
        ({"data_collection": "maybe"}, "provider.data_collection"),
        ({"ordr": ["a"]}, "provider.ordr"),
    ):
        with pytest.raises(APIError) as refused:
            provider_routing({"provider": provider}, "")
        assert refused.value.status == 400 and refused.value.param == param
