"""The errors a call ends with when its plan ran out: every deployment waiting out a limit (`blocked`), or the
summary of what was tried (`summary`) that AllAttemptsFailed and NoDeploymentAvailable carry."""

from __future__ import annotations

import math

from routing.call import Call
from routing.errors import NoDeploymentAvailable, RateLimited, RoutingError
from routing.limits.admission import Skip
from routing.manager import ModelRoute


def blocked(route: ModelRoute, skips: list[Skip]) -> RoutingError:
    """Every deployment waits out a limit: 429, or 503 when each upstream asked with a 503; either way with the
    soonest wait as Retry-After, so the client comes back when something can serve it."""
    waits = [s.retry_after for s in skips if s.retry_after is not None]
    wait = min(waits) if waits else 1.0
    if all(s.reason == "retry_after" and s.status == 503 for s in skips):
        return NoDeploymentAvailable(
            f"every deployment of {route.model.id} is unavailable (503 with Retry-After); retry in {wait:.1f}s", wait
        )
    denials = [s.denial for s in skips if s.denial is not None]
    headers = min(denials, key=lambda d: d.retry_after).headers() if denials else {}
    headers["retry-after"] = str(max(1, math.ceil(wait)))
    return RateLimited(
        f"every deployment of {route.model.id} is at its rate limit; retry in {wait:.1f}s", wait, headers
    )


def summary(route: ModelRoute, call: Call) -> str:
    """What was tried, and why each failed or was passed over."""
    if not call.attempts:
        return f"no deployment of {route.model.id} could be tried within the deadline"
    if all(a.outcome == "skipped" for a in call.attempts):
        why = "; ".join(f"{a.deployment}: {a.error.replace('_', ' ')}" for a in call.attempts)
        return f"no deployment of {route.model.id} can serve now ({why})"
    tried = "; ".join(f"{a.deployment}: {a.error or a.outcome}" for a in call.attempts)
    return f"all {len(call.attempts)} attempt(s) for {route.model.id} failed ({tried})"
