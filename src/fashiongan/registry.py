"""Name → object registries for models, losses and metrics; their keys feed the CLI's choices."""

from collections.abc import Callable
from typing import Generic, TypeVar

from fashiongan.errors import FashionGANError

T = TypeVar("T")


class Registry(Generic[T]):
    """A dict filled by `@registry.register("name")`; unknown names list the valid ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise FashionGANError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
