"""The open-loop trace of `make bench-routing`, pure and seeded: steady load at 60% of local capacity with a
burst at 3x for 20 s, multi-turn sessions that share a long prompt prefix, reply lengths from a lognormal."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Request:
    at: float  # seconds from the start of the trace
    session: str
    turn: int
    max_tokens: int
    burst: bool


@dataclass(frozen=True, slots=True)
class Shape:
    """Rates in calls per second; `capacity` is the local pool's, from the twins' concurrency and service time."""

    capacity: float
    duration: float = 70.0
    burst_start: float = 25.0
    burst_seconds: float = 20.0
    steady_share: float = 0.6
    burst_factor: float = 3.0
    new_session_share: float = 0.25  # the chance a call opens a new session rather than continuing one
    mean_tokens: float = 120.0

    def rate(self, t: float) -> float:
        base = self.capacity * self.steady_share
        in_burst = self.burst_start <= t < self.burst_start + self.burst_seconds
        return base * (self.burst_factor if in_burst else 1.0)

    def in_burst(self, t: float) -> bool:
        return self.burst_start <= t < self.burst_start + self.burst_seconds


def build(shape: Shape, seed: int = 10) -> list[Request]:
    """Poisson arrivals at the shape's rate (thinning), each on a new or a running session."""
    rng = random.Random(seed)
    peak = shape.rate(shape.burst_start)
    sessions: list[list[int]] = []  # [session number, next turn]
    opened = 0
    out: list[Request] = []
    t = 0.0
    sigma = 0.6
    mu = math.log(shape.mean_tokens) - sigma**2 / 2
    while True:
        t += rng.expovariate(peak)
        if t >= shape.duration:
            return out
        if rng.random() >= shape.rate(t) / peak:
            continue
        if not sessions or rng.random() < shape.new_session_share:
            sessions.append([opened, 0])
            opened += 1
            sessions[:] = sessions[-40:]  # sessions go idle: the 40 most recent stay in play
        session = rng.choice(sessions)
        tokens = max(16, min(400, int(rng.lognormvariate(mu, sigma))))
        out.append(Request(t, f"s{session[0]}", session[1], tokens, shape.in_burst(t)))
        session[1] += 1
