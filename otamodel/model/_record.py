"""Fast frozen records for the model's state (the checker builds millions of them).

:func:`record` turns an annotated class into a slotted, frozen, hashable record with generated
code instead of generic loops: a positional-or-keyword constructor, a field-wise
``__evolve__`` (what :func:`replace` calls), ``__eq__`` over the compared fields, a hash that
is computed once per object, ``__repr__`` and pickling by positional values. Fields declared
with ``field(eq=False)`` (notes, constant context) are carried along but neither compared nor
hashed. A class that defines ``__reduce__`` keeps its own (the world leaves its constant
context out of pickles). Fields declared ``field(core=False)`` are compared and hashed but
left out of the record's *core*, whose hash is cached apart (``_core``): two records can be
matched by their cores (:func:`get_core_hash`, :func:`is_same_core`), and a copy that changes
only fields outside the core keeps the core's hash (:func:`get_evolve_outside_core`).
"""

from __future__ import annotations

import enum
import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")

_MISSING: Any = object()


class _Field:
    __slots__ = ("core", "default", "eq", "repr")

    def __init__(
        self, default: Any, eq: bool, repr: bool | Callable[[Any], str], core: bool = True
    ) -> None:
        self.default = default
        self.eq = eq
        self.repr = repr
        self.core = core


def field(
    *,
    default: Any,
    eq: bool = True,
    repr: bool | Callable[[Any], str] = True,
    core: bool = True,
) -> Any:
    """A field with options: ``eq=False`` keeps it out of equality and hash, ``repr=False`` out
    of the repr, ``repr=function`` shows the field as ``function(value)``; ``core=False``
    keeps a compared field out of the record's *core* (see :func:`get_core_hash`)."""
    return _Field(default, eq, repr, core)


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise AttributeError(f"{type(self).__name__} is frozen: use replace() to change {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")


def _compile(source: str, namespace: dict[str, Any], name: str) -> Callable[..., Any]:
    exec(compile(source, f"<record {name}>", "exec"), namespace)
    return namespace[name]  # type: ignore[no-any-return]


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """Rebuild ``cls`` as a fast frozen record (see the module docstring)."""
    names = list(inspect.get_annotations(cls))
    specs: dict[str, _Field] = {}
    for name in names:
        value = cls.__dict__.get(name, _MISSING)
        specs[name] = value if isinstance(value, _Field) else _Field(value, True, True)
    namespace = {
        key: value
        for key, value in cls.__dict__.items()
        if key not in names and key not in ("__dict__", "__weakref__")
    }
    namespace["__slots__"] = ()
    namespace["__record_fields__"] = tuple(names)
    namespace["__record_compared__"] = tuple(n for n in names if specs[n].eq)
    meta: Any = type(cls)
    # The slots live in a plain (mutable) base class: generated code fills a new object of
    # the base with ordinary attribute stores (fast slot writes) and then gives it the frozen
    # class, whose layout is the same (``__class__`` assignment), instead of calling each
    # slot's ``__set__`` through the frozen ``__setattr__``.
    # A record with fields outside its core also caches its core's hash (``_core``).
    outside = [n for n in names if specs[n].eq and not specs[n].core]
    cached = ("_hash", "_core") if outside else ("_hash",)
    slots: Any = meta(f"{cls.__name__}Slots", cls.__bases__, {"__slots__": (*names, *cached)})
    slots.__module__ = cls.__module__
    slots.__qualname__ = f"{cls.__qualname__}.Slots"
    new_cls: Any = meta(cls.__name__, (slots,), namespace)
    new_cls.__module__ = cls.__module__
    new_cls.__qualname__ = cls.__qualname__
    scope: dict[str, Any] = {
        "_cls": new_cls,
        "_slots": slots,
        "_new": object.__new__,
        "_M": _MISSING,
        "_set__hash": slots.__dict__["_hash"].__set__,
    }
    if outside:
        scope["_set__core"] = slots.__dict__["_core"].__set__
    for name, spec in specs.items():
        scope[f"_d_{name}"] = spec.default
    _add_methods(new_cls, names, specs, scope, inspect.get_annotations(cls), outside)
    return new_cls  # type: ignore[no-any-return]


_CORE_METHODS = ("__core_hash__", "__same_core__", "__evolve_outside_core__")

_NONE_HASH = 0x6E6F6E65
"""What an optional field that is ``None`` contributes to a record's hash."""


def _add_methods(
    cls: Any,
    names: list[str],
    specs: dict[str, _Field],
    scope: dict[str, Any],
    annotations: dict[str, Any],
    outside: list[str],
) -> None:
    def param(n: str) -> str:
        return n if specs[n].default is _MISSING else f"{n}=_d_{n}"

    # Parameters without defaults must come first (the records declare them first).
    params = ", ".join(param(n) for n in names)
    # __new__ fills an object of the slots class and then freezes it (no __init__ runs).
    cached = ("_hash", "_core") if outside else ("_hash",)
    reset = "".join(f"    {{0}}.{slot} = None\n" for slot in cached)
    body = "".join(f"    self.{n} = {n}\n" for n in names)
    init = (
        f"def __new__(cls, {params}):\n    self = _new(_slots)\n{body}"
        f"{reset.format('self')}    self.__class__ = _cls\n    return self\n"
    )
    cls.__new__ = staticmethod(_compile(init, scope, "__new__"))

    kw = ", ".join(f"{n}=_M" for n in names)
    lines = "".join(f"    new.{n} = self.{n} if {n} is _M else {n}\n" for n in names)
    evolve = (
        f"def __evolve__(self, *, {kw}):\n    new = _new(_slots)\n{lines}"
        f"{reset.format('new')}    new.__class__ = _cls\n    return new\n"
    )
    cls.__evolve__ = _compile(evolve, scope, "__evolve__")
    if outside:
        # Only fields outside the core change: the copy keeps the core's cached hash.
        kw_out = ", ".join(f"{n}=_M" for n in outside)
        copied = "".join(
            f"    new.{n} = self.{n} if {n} is _M else {n}\n"
            if n in outside
            else f"    new.{n} = self.{n}\n"
            for n in names
        )
        keep = (
            f"def __evolve_outside_core__(self, *, {kw_out}):\n    new = _new(_slots)\n"
            f"{copied}    new._hash = None\n    new._core = self._core\n"
            "    new.__class__ = _cls\n    return new\n"
        )
        cls.__evolve_outside_core__ = _compile(keep, scope, "__evolve_outside_core__")

    compared = [n for n in names if specs[n].eq]
    mine = ", ".join(f"self.{n}" for n in compared)
    theirs = ", ".join(f"other.{n}" for n in compared)
    eq = (
        "def __eq__(self, other):\n"
        "    if self is other:\n        return True\n"
        "    if other.__class__ is not _cls:\n        return NotImplemented\n"
        f"    return ({mine},) == ({theirs},)\n"
    )
    cls.__eq__ = _compile(eq, scope, "__eq__")
    cls.__ne__ = _compile(
        "def __ne__(self, other):\n    r = self.__eq__(other)\n"
        "    return r if r is NotImplemented else not r\n",
        scope,
        "__ne__",
    )
    salt = hash(cls.__qualname__)
    scope["_salt"] = salt
    scope["_NONE"] = _NONE_HASH
    # hash(None) differs between processes on Python < 3.12: optional fields hash a constant
    # instead, so equal states hash alike in every worker started with the same hash seed.
    # A plain Enum hashes its name in Python code (``Enum.__hash__``): a field declared as one
    # contributes its member's name instead, the same value at C speed.
    module = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}

    def hashed_field(n: str) -> str:
        annotation = annotations.get(n)
        declared = module.get(annotation) if isinstance(annotation, str) else annotation
        if (
            isinstance(declared, type)
            and issubclass(declared, enum.Enum)
            and declared.__hash__ is enum.Enum.__hash__
        ):
            return f"self.{n}._name_"
        if "None" in str(annotation):
            return f"(_NONE if self.{n} is None else self.{n})"
        if isinstance(declared, type) and "__record_fields__" in vars(declared):
            # A record field's hash is read from its cache slot (no call to its __hash__
            # unless not computed yet): the same value, hashed alike in the tuple.
            return f"(_h_{n} if (_h_{n} := self.{n}._hash) is not None else hash(self.{n}))"
        return f"self.{n}"

    if outside:
        _add_core_methods(cls, [n for n in compared if n not in outside], scope, hashed_field)
        core_hash = "(_c if (_c := self._core) is not None else self.__core_hash__())"
        hashed = ", ".join([core_hash, *(hashed_field(n) for n in outside)])
    else:
        hashed = ", ".join(hashed_field(n) for n in compared)
    hash_src = (
        "def __hash__(self):\n    h = self._hash\n    if h is None:\n"
        f"        h = hash((_salt, {hashed},))\n        _set__hash(self, h)\n    return h\n"
    )
    cls.__hash__ = _compile(hash_src, scope, "__hash__")

    shown = [n for n in names if specs[n].repr]
    for n in shown:
        if callable(specs[n].repr):
            scope[f"_r_{n}"] = specs[n].repr
    parts = ", ".join(
        f"{n}={{_r_{n}(self.{n})}}" if callable(specs[n].repr) else f"{n}={{self.{n}!r}}"
        for n in shown
    )
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _compile(
            f"def __repr__(self):\n    return f'{cls.__qualname__}({parts})'\n", scope, "__repr__"
        )
    cls.__setattr__ = _frozen_setattr
    cls.__delattr__ = _frozen_delattr

    if "__reduce__" not in cls.__dict__:
        values = ", ".join(f"self.{n}" for n in names)
        reduce = f"def __reduce__(self):\n    return (_cls, ({values},))\n"
        cls.__reduce__ = _compile(reduce, scope, "__reduce__")
    for function in ("__new__", "__evolve__", "__eq__", "__hash__", *_CORE_METHODS):
        if function in vars(cls):
            getattr(cls, function).__qualname__ = f"{cls.__qualname__}.{function}"


def _add_core_methods(
    cls: Any, core: list[str], scope: dict[str, Any], hashed_field: Callable[[str], str]
) -> None:
    """The core's cached hash and the comparison of two records' cores."""
    scope["_core_salt"] = hash(f"{cls.__qualname__} core")
    hashed = ", ".join(hashed_field(n) for n in core)
    core_hash = (
        "def __core_hash__(self):\n    c = self._core\n    if c is None:\n"
        f"        c = hash((_core_salt, {hashed},))\n        _set__core(self, c)\n    return c\n"
    )
    cls.__core_hash__ = _compile(core_hash, scope, "__core_hash__")
    mine = ", ".join(f"self.{n}" for n in core)
    theirs = ", ".join(f"other.{n}" for n in core)
    same = (
        "def __same_core__(self, other):\n"
        f"    return self is other or ({mine},) == ({theirs},)\n"
    )
    cls.__same_core__ = _compile(same, scope, "__same_core__")


def get_core_hash(instance: object) -> int:
    """The hash of a record's *core*: its compared fields but those declared
    ``field(core=False)``; cached like the record's hash. Records whose cores are equal
    (:func:`is_same_core`) have equal core hashes."""
    return instance.__core_hash__()  # type: ignore[attr-defined,no-any-return]


def is_same_core(one: _T, other: _T) -> bool:
    """Whether two records of one class agree on every field of their core."""
    return one.__same_core__(other)  # type: ignore[attr-defined,no-any-return]


def get_core_hasher(cls: type[_T]) -> Callable[[_T], int]:
    """:func:`get_core_hash` of a record class as its own function, for hot paths (no
    wrapper call): ``hasher(instance)``."""
    return cls.__core_hash__  # type: ignore[attr-defined,no-any-return]


def get_core_matcher(cls: type[_T]) -> Callable[[_T, _T], bool]:
    """:func:`is_same_core` of a record class as its own function, for hot paths:
    ``matcher(one, other)``."""
    return cls.__same_core__  # type: ignore[attr-defined,no-any-return]


def get_evolve_outside_core(cls: type[_T]) -> Callable[..., _T]:
    """The evolve of a record class that changes only fields outside its core (keyword
    arguments) and keeps the core's cached hash: ``evolve(instance, field=value)``."""
    return cls.__evolve_outside_core__  # type: ignore[attr-defined,no-any-return]


def replace(instance: _T, **changes: Any) -> _T:
    """A copy of a record with some fields changed (``attrs.evolve`` for records and attrs
    classes alike)."""
    evolve = _ATTRS_EVOLVE.get(instance.__class__)
    if evolve is None:
        evolve = _get_attrs_evolve(instance.__class__)
    return evolve(instance, **changes)  # type: ignore[no-any-return]


_ATTRS_EVOLVE: dict[type, Callable[..., Any]] = {}


def _get_attrs_evolve(cls: type) -> Callable[..., Any]:
    """The evolve of a record class, or a generated field-wise one for an attrs class (one
    constructor call); remembered per class."""
    own = getattr(cls, "__evolve__", None)
    if own is not None:
        _ATTRS_EVOLVE[cls] = own
        return own  # type: ignore[no-any-return]
    import attrs

    fields = [a for a in attrs.fields(cls) if a.init]
    scope: dict[str, Any] = {"_cls": cls, "_M": _MISSING}
    kw = ", ".join(f"{a.name}=_M" for a in fields)
    args = ", ".join(f"{a.alias}=self.{a.name} if {a.name} is _M else {a.name}" for a in fields)
    function = _compile(f"def evolve(self, *, {kw}):\n    return _cls({args})\n", scope, "evolve")
    _ATTRS_EVOLVE[cls] = function
    return function


def get_evolve(cls: type[_T]) -> Callable[..., _T]:
    """The field-wise evolve of a record class, to call as ``evolve(instance, field=value)``
    on hot paths (what :func:`replace` calls, without its dispatch)."""
    return cls.__evolve__  # type: ignore[attr-defined,no-any-return]


def get_fields(cls: type[Any]) -> tuple[str, ...]:
    """The field names of a record class, in declaration order."""
    return cls.__record_fields__  # type: ignore[no-any-return]
