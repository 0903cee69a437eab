"""Failed logins counted per name and per address, so that guessing passwords online is slow."""

from __future__ import annotations

import threading
import time
from collections import deque

from app.errors import ReittiError


class TooManyAttempts(ReittiError):
    """Too many failed logins for this name or address (429)."""

    status = 429
    problem = "too-many-attempts"
    title = "Too many login attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins; try again in {retry_after} seconds.")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Say when to try again."""
        return {"Retry-After": str(self.retry_after)}


class LoginThrottle:
    """Failed logins counted per name and per address in a sliding window, in this process.

    Per process: with several workers the limits hold per worker, which still turns an
    online guessing attack from thousands of tries a minute into a handful.
    """

    def __init__(self, *, per_name: int = 5, per_address: int = 30, window: int = 15 * 60) -> None:
        self.limits = {"name": per_name, "address": per_address}
        self.window = window
        self.failures: dict[tuple[str, str], deque[float]] = {}
        self.lock = threading.Lock()

    def _keys(self, name: str, address: str) -> list[tuple[str, str]]:
        return [("name", name.strip().lower()), ("address", address)]

    def check(self, name: str, address: str) -> None:
        """Raise TooManyAttempts while either the name or the address is over its limit."""
        now = time.monotonic()
        with self.lock:
            for key in self._keys(name, address):
                failures = self.failures.get(key)
                while failures and failures[0] <= now - self.window:
                    failures.popleft()
                if failures and len(failures) >= self.limits[key[0]]:
                    raise TooManyAttempts(int(failures[0] + self.window - now) + 1)

    def failed(self, name: str, address: str) -> None:
        """Count a failed login."""
        with self.lock:
            for key in self._keys(name, address):
                self.failures.setdefault(key, deque()).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        """A right password clears the name's count (not the address's)."""
        with self.lock:
            self.failures.pop(("name", name.strip().lower()), None)
