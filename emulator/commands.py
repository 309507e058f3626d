"""Each device's last run of each command, as `GET …/commands/{name}` shows it (in memory only)."""

from __future__ import annotations

from typing import Any


class CommandHistory:
    def __init__(self) -> None:
        self._last: dict[tuple[str, str], dict[str, Any]] = {}

    def record(self, device_id: str, method: str, result: dict[str, Any]) -> None:
        self._last[(device_id, method)] = result

    def history(self, device_id: str, method: str) -> list[dict[str, Any]]:
        last = self._last.get((device_id, method))
        return [] if last is None else [last]

    def forget(self, device_id: str) -> None:
        for key in [key for key in self._last if key[0] == device_id]:
            del self._last[key]
