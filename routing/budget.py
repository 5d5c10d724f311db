"""The spill budget, pure and clock-injected: what spilled calls cost over the last hour, against a cap.

With several processes the cap is the fleet's: `others` is what the other workers and replicas spilled in the
window, as last read from Redis (routing/shared/spill.py), and `unsynced` what this one spilled since it last
told them.
"""

from __future__ import annotations

from collections import deque

WINDOW_SECONDS = 3600.0


class SpendWindow:
    """USD spent in a sliding window; `limit` None means no cap."""

    def __init__(self, limit: float | None, window: float = WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._entries: deque[tuple[float, float]] = deque()
        self._total = 0.0
        self.others = 0.0  # the rest of the fleet's spend in the window (0 for a process on its own)
        self.unsynced = 0.0  # spent here since the fleet was last told

    def with_limit(self, limit: float | None) -> SpendWindow:
        """The same spend under a new cap (a config reload must not forgive what was already spent)."""
        window = SpendWindow(limit, self.window)
        window._entries, window._total = deque(self._entries), self._total
        window.others, window.unsynced = self.others, self.unsynced
        return window

    def add(self, now: float, usd: float) -> None:
        if usd > 0:
            self._entries.append((now, usd))
            self._total += usd
            self.unsynced += usd

    def spent(self, now: float) -> float:
        """What the fleet spent in the window: this process's own plus the others' last reading."""
        return self.own(now) + self.others

    def own(self, now: float) -> float:
        """What this process spent in the window."""
        while self._entries and self._entries[0][0] <= now - self.window:
            self._total -= self._entries.popleft()[1]
        if not self._entries:
            self._total = 0.0  # no float drift left over from the sums
        return max(0.0, self._total)

    def left(self, now: float) -> bool:
        """Whether spilled traffic may still be paid for (always, without a cap)."""
        return self.limit is None or self.spent(now) < self.limit

    def used(self, now: float) -> float:
        """The share of the cap spent (0 without a cap; a cap of 0 is always spent)."""
        if self.limit is None:
            return 0.0
        return self.spent(now) / self.limit if self.limit > 0 else 1.0
