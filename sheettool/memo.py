"""Bounded caches: what a batch of returns computes once and looks up for each file."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> V:
    """Keep ``value`` under ``key`` and give it back; a cache holding ``limit`` entries is emptied
    first (a batch rebuilds at once what it uses again, and memory stays bounded)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value
