"""The parallel search on a Dask cluster (``check(..., cluster=ADDRESS)``, CHK-17).

Each Dask worker runs one :class:`~otamodel.checker._workers.Shard` as an actor; the model
(with its scenario) is sent once per worker when the actor is created, and afterwards only
the compact per-level messages of the parallel search travel (fingerprints, keys, edges,
verdict bits; states only when a level is rebalanced). The coordinator is this process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from otamodel.checker._model import Model
from otamodel.checker._search import Plan
from otamodel.checker._workers import Shard
from otamodel.errors import ModelDefinitionError


class DaskEngine:
    """Shards as actors on the workers of the Dask scheduler at ``address``."""

    def __init__(self, address: str, model: Model[Any, Any], plan: Plan, workers: int) -> None:
        from distributed import Client

        self.client = Client(address, timeout=30)  # type: ignore[no-untyped-call]
        try:
            names = sorted(self.client.scheduler_info()["workers"])
            if not names:
                raise ModelDefinitionError(f"the Dask cluster at {address} has no workers")
            chosen = names[: max(1, min(workers, len(names)))] if workers > 0 else names
            self.workers = len(chosen)
            futures = [
                self.client.submit(Shard, model, plan, actor=True, workers=[name], pure=False)
                for name in chosen
            ]
            self.actors = [future.result() for future in futures]
        except BaseException:
            self.client.close()  # type: ignore[no-untyped-call]
            raise
        self.pending: deque[list[Any]] = deque()
        """The answers of each submitted call not collected yet, oldest first."""

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        self.submit(method, args)
        return self.collect()

    def submit(self, method: str, args: Sequence[tuple[Any, ...]]) -> None:
        self.pending.append(
            [
                getattr(actor, method)(*arguments)
                for actor, arguments in zip(self.actors, args, strict=True)
            ]
        )

    def collect(self) -> list[Any]:
        return [future.result() for future in self.pending.popleft()]

    def close(self) -> None:
        self.actors = []
        self.client.close()  # type: ignore[no-untyped-call]


def count_workers(address: str) -> int:
    """How many workers the Dask scheduler at ``address`` has."""
    from distributed import Client

    with Client(address, set_as_default=False, timeout=30) as client:  # type: ignore[no-untyped-call]
        return len(client.scheduler_info()["workers"])


__all__ = ["DaskEngine", "count_workers"]
