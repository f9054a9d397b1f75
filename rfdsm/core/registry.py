"""What the registries of the seams share: named objects, identity by content, pickling by value.

A :class:`Registry` maps names to objects of one kind (estimators, data models, ...); its
built-ins cannot be replaced, and are made on first use by a loader the seam's package gives
(the registry never imports a plug-in).  :class:`ByContent` gives such objects equality and hashing by a
content fingerprint, so that caches and sweep hashes see what an object computes, not only its
name, and pickling by value (cloudpickle), so that an object registered only in a parent
process (a script's ``__main__``, a notebook) reaches spawned workers and Dask; a built-in
pickles by name and comes back as the very object.
"""

from __future__ import annotations

import pickle

_REGISTRIES: dict[str, "Registry"] = {}


class Registry:
    """Objects of class ``cls`` by name; ``param`` names them in error messages (the setting
    parameter that selects one)."""

    def __init__(self, kind: str, param: str, cls, builtins=()):
        """``builtins``: the built-in objects, or a function returning them (called once, on
        the first lookup)."""
        self.kind, self.param, self.cls = kind, param, cls
        self._loader = builtins if callable(builtins) else (lambda: builtins)
        self._loaded = None
        self._extra: dict = {}
        _REGISTRIES[kind] = self

    @property
    def _builtins(self) -> dict:
        if self._loaded is None:
            self._loaded = {obj.name: obj for obj in self._loader()}
        return self._loaded

    @property
    def _items(self) -> dict:
        return {**self._builtins, **self._extra}

    def register(self, obj, overwrite: bool = False):
        if not isinstance(obj, self.cls):
            article = "an" if self.kind[0] in "aeiou" else "a"
            raise ValueError(f"{article} {self.kind} must be an "
                             f"{self.cls.__module__}.{self.cls.__name__}, got {type(obj).__name__}")
        if not isinstance(obj.name, str) or not obj.name:
            raise ValueError(f"{self.kind} name must be a non-empty string")
        if obj.name in self._builtins:
            raise ValueError(f"the built-in {self.kind} {obj.name!r} cannot be replaced")
        if obj.name in self._items and not overwrite:
            raise ValueError(f"{self.kind} {obj.name!r} is already registered "
                             "(pass overwrite=True)")
        self._extra[obj.name] = obj
        return obj

    def unregister(self, name) -> None:
        """Remove a registered object (the built-ins stay)."""
        if name in self._builtins:
            raise ValueError(f"the built-in {self.kind} {name!r} cannot be removed")
        self._extra.pop(name, None)

    def get(self, name):
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise ValueError(f"{self.param} must be one of {sorted(self._items)}, "
                             f"got {name!r}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def is_builtin(self, obj) -> bool:
        return self._builtins.get(getattr(obj, "name", None)) is obj


def _builtin(module: str, kind: str, name: str):
    # a fresh worker may not have imported the registry's module yet
    import importlib

    importlib.import_module(module)
    return _REGISTRIES[kind]._builtins[name]


def _unpickle(payload):
    cls, state = pickle.loads(payload)
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


class ByContent:
    """Mixin: subclasses set ``_registry_kind`` and define the property ``fingerprint``."""

    _registry_kind = ""

    def __eq__(self, other):
        return (isinstance(other, ByContent) and other._registry_kind == self._registry_kind
                and other.fingerprint == self.fingerprint)

    def __hash__(self):
        return hash(self.fingerprint)

    def __reduce__(self):
        registry = _REGISTRIES[self._registry_kind]
        if registry.is_builtin(self):
            return (_builtin, (registry.cls.__module__, self._registry_kind, self.name))
        import cloudpickle  # by value: a worker's registry does not know this object

        return (_unpickle, (cloudpickle.dumps((type(self), dict(self.__dict__))),))

    def __repr__(self):
        return f"<{self._registry_kind} {self.name!r}>"
