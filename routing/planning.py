"""A call's plan, pure: which deployments of a model to try and in what order.

The strategy's weights give a weighted draw for the first and weight order for the rest; a request's `provider`
object (request_routing.py) narrows and reorders that, Beacon's preferences (selection.py) reorder it, and
deployments whose circuit is open go last. Nothing here bypasses health, circuits or limits: the executor still
admits each attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from routing.config.schema import DeploymentConfig
from routing.errors import NoDeploymentAvailable, NoMatchingDeployment
from routing.manager import ModelRoute
from routing.request_routing import NoMatch, ProviderRouting, narrow, reorder, sent_parameters
from routing.selection import Preferences, attempt_order, preferred_order
from routing.strategies import LOCAL, Observed


def plan(
    route: ModelRoute,
    draw: float,
    available: Callable[[DeploymentConfig], bool],
    observed: Callable[[DeploymentConfig], Observed],
    prefs: Preferences | None = None,
    wants: ProviderRouting | None = None,
    payload: dict[str, Any] | None = None,
    order: Sequence[DeploymentConfig] | None = None,
) -> list[DeploymentConfig]:
    """Every usable deployment of `route` in the order to try; `draw` is a uniform number in [0, 1). `order`: the
    strategy's own order for this call (local_first's, by load) in place of the weighted draw."""
    model = route.model
    if not route.entries:
        raise NoDeploymentAvailable(f"model {model.id} has no enabled deployment")
    up = [e for e in route.entries if e.available]  # one health checks took down gets no request until a probe passes
    if not up:
        why = "; ".join(f"{e.deployment.name}: {e.reason}" for e in route.entries)
        raise NoDeploymentAvailable(f"no deployment of {model.id} can serve ({why})")
    if order is not None:
        usable = {e.deployment.key for e in up}
        order = [d for d in order if d.key in usable]
    elif wants is not None and wants.fixed_order:  # `sort` / `order`: no draw, the strategy's weights in order
        order = [e.deployment for e in sorted(up, key=lambda e: -e.weight)]
    else:
        order = [e.deployment for e in attempt_order(up, [e.weight for e in up], draw)]
    if wants is not None:
        local = {e.deployment.key for e in up if e.side == LOCAL}
        try:
            order = narrow(order, model, wants, sent_parameters(payload or {}), lambda d: d.key in local)
        except NoMatch as exc:
            raise NoMatchingDeployment(f"no deployment of {model.id} matches {exc.constraint}") from None
        order = reorder(order, wants, observed)
    if prefs is not None:
        order = preferred_order(order, prefs, lambda d: observed(d).ttft_ms)
        if prefs.strict_region and prefs.region:
            order = [d for d in order if d.region == prefs.region]
            if not order:
                raise NoDeploymentAvailable(f"no deployment of {model.id} in region {prefs.region}")
    return sorted(order, key=lambda d: not available(d))
