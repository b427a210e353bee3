"""A bounded least-recently-used cache of loaded frames, so a viewer's memory does not grow with
the length of the sequence: a 300-frame sequence shows its first frame after one load."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameCache(Generic[T]):
    """``cache.get(key)`` returns ``load(key)``, loading it on first use and keeping at most
    ``max_items`` values whose ``size(value)`` adds up to at most ``max_bytes`` (the newest value is
    always kept, even if it alone is larger). Thread-safe; ``loads`` counts calls to ``load``."""

    def __init__(self, load: Callable[[Hashable], T], size: Callable[[T], int], *, max_items: int = 32, max_bytes: int = 512 << 20):
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._load, self._size = load, size
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return sum(n for _, n in self._items.values())

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = self._load(key)  # outside the lock: loading is the slow part
        n = int(self._size(value))
        with self._lock:
            self.loads += 1
            self._items[key] = (value, n)
            self._items.move_to_end(key)
            while len(self._items) > 1 and (len(self._items) > self.max_items or self.nbytes > self.max_bytes):
                self._items.popitem(last=False)
        return value
