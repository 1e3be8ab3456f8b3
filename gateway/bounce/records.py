"""Plain record types for the bounce package, without the ``dataclasses`` module.

Owns: :class:`Record` and :class:`FrozenRecord`, the bases of the package's small records
(reports, facts, rules, MIME parts, DSN fields): equality, ``repr`` and, for frozen ones,
hashing and refusing assignment, all read from the class's ``_FIELDS``. Each subclass lists
its fields in ``__slots__`` and ``_FIELDS`` and writes its own ``__init__``.

Why not ``@dataclass``: importing ``dataclasses`` (which imports ``inspect``) and generating
each class's methods at import took about 7 % of ``gateway bounce classify``'s whole run, and
that command is timed as a whole process against Sisimai (``bench/bounces.py --process``). The
behaviour is what ``@dataclass(slots=True)`` and ``@dataclass(frozen=True, slots=True)`` give.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, ClassVar


class Record:
    """A mutable record: equal when of the same class with equal fields; not hashable."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        msg = f"unhashable type: {type(self).__name__!r}"
        raise TypeError(msg)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"{type(self).__qualname__}({inner})"


class FrozenRecord(Record):
    """An immutable record: fields are set once in ``__init__`` (with :meth:`_init`)."""

    __slots__ = ()

    def _init(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        msg = f"cannot assign to field {name!r}"
        raise AttributeError(msg)

    def __delattr__(self, name: str) -> None:
        msg = f"cannot delete field {name!r}"
        raise AttributeError(msg)

    def __hash__(self) -> int:
        return hash(self._values())
