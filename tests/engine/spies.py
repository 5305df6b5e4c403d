"""A spy backend for the engine tests: records what ``Parallel`` dispatches."""

from __future__ import annotations

from typing import Any

from pytest_parproc.parallel.backends import registry


def spy_backend(name: str) -> tuple[Any, list[int], list[int]]:
    """An instance of backend ``name`` that records each batch size and the number of
    batches in flight at each submission."""
    base = registry.backend_factory(name)
    sizes: list[int] = []
    in_flight_seen: list[int] = []
    outstanding: set[int] = set()

    class Spy(base):  # type: ignore[misc, valid-type]
        def submit(self, batch: Any, on_done: Any) -> None:
            sizes.append(len(batch))
            outstanding.add(batch.key)
            in_flight_seen.append(len(outstanding))

            def done(done_batch: Any, outcome: Any) -> None:
                outstanding.discard(done_batch.key)
                on_done(done_batch, outcome)

            super().submit(batch, done)

    return Spy(), sizes, in_flight_seen
