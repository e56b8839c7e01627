"""A model swap leaves the objects alive frozen (out of the collector's passes) and the old model freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from rakuten_mlops.appdb import utcnow
from rakuten_mlops.config import Settings
from rakuten_mlops.serving.metrics import ServingMetrics
from rakuten_mlops.serving.model_holder import LoadedModel, ModelHolder


class CyclicModel:
    """A model in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's objects back in the collector's reach afterwards, as before the test."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def loaded(model: object, version: str) -> LoadedModel:
    return LoadedModel(model, "m", version, "run", "registry", utcnow())


def is_tracked_by_the_collector(obj: object) -> bool:
    """Whether a collection would look at `obj` (gc.get_objects lists no frozen object)."""
    return any(o is obj for o in gc.get_objects())


@pytest.mark.usefixtures("unfrozen")
def test_a_swap_freezes_the_new_model_and_frees_the_old_ones_cycles(tmp_path: Path) -> None:
    holder = ModelHolder(Settings(_env_file=None, home=tmp_path), ServingMetrics())  # type: ignore[call-arg]
    first, second = CyclicModel(), CyclicModel()
    assert is_tracked_by_the_collector(first)
    holder._swap(loaded(first, "1"))
    assert gc.get_freeze_count() > 0
    assert not is_tracked_by_the_collector(first)  # frozen: full collections skip it
    gone = weakref.ref(first)
    del first
    holder._swap(loaded(second, "2"))
    assert gone() is None  # the first model's cycle, frozen until this swap, is collected
    assert holder.current is not None and holder.current.model is second
    assert not is_tracked_by_the_collector(second)
