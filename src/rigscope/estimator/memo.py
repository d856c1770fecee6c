"""Memoize per model object: plans ask for the same model's weights hundreds of times, and a
ModelSpec's tensors make hashing it by value slow, so results are kept by identity."""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from rigscope.specs import ModelSpec

R = TypeVar("R")


def by_model(fn: Callable[..., R]) -> Callable[..., R]:
    """fn(model, *args) once per (model object, args); args must be hashable."""
    cache: dict[tuple[Hashable, ...], tuple[ModelSpec, Any]] = {}

    @functools.wraps(fn)
    def memoized(model: ModelSpec, *args: Hashable) -> R:
        key = (id(model), *args)
        hit = cache.get(key)
        if hit is not None and hit[0] is model:  # the id may be a freed model's
            return hit[1]
        if len(cache) > 1024:
            cache.clear()
        out = fn(model, *args)
        cache[key] = (model, out)
        return out

    return memoized
