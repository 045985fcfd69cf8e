"""HTTP header list that stays in wire form (bytes) so forwarding never re-encodes.

Names are stored lower-cased; the str API encodes/decodes with latin-1 on demand,
which keeps the proxy hot path free of per-header conversions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Headers"]

HeaderItems = Iterable[tuple[str | bytes, str | bytes]]


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


class Headers:
    """An ordered multi-dict of header fields, case-insensitive by name."""

    __slots__ = ("_list",)

    def __init__(self, items: HeaderItems | None = None) -> None:
        self._list: list[tuple[bytes, bytes]] = (
            [] if items is None else [(_b(n).lower(), _b(v)) for n, v in items]
        )

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        """Adopt a list of (lower-case name, value) byte pairs without copying."""
        h = cls.__new__(cls)
        h._list = raw
        return h

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return self._list

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode("latin-1")
        for n, v in self._list:
            if n == key:
                return v.decode("latin-1")
        return default

    def get_all(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [v.decode("latin-1") for n, v in self._list if n == key]

    def get_list(self, name: str) -> list[str]:
        """Values of a comma-separated list header, split and stripped (RFC 9110 §5.6.1)."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(p.strip() for p in value.split(",") if p.strip())
        return out

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower().encode("latin-1")
        for n, _ in self._list:  # a plain loop: any() over a generator costs twice as much per field
            if n == key:
                return True
        return False

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        self.remove(name)

    def set(self, name: str, value: str | bytes) -> None:
        """Replace every field called `name` with one field."""
        key = name.lower().encode("latin-1")
        for n, _ in self._list:
            if n == key:  # present: drop every copy (rare; a new name is only appended)
                self._list = [(n, v) for n, v in self._list if n != key]
                break
        self._list.append((key, _b(value)))

    def setdefault(self, name: str, value: str | bytes) -> None:
        if name not in self:
            self.add(name, value)

    def add(self, name: str, value: str | bytes) -> None:
        self._list.append((name.lower().encode("latin-1"), _b(value)))

    def remove(self, *names: str) -> None:
        keys = {n.lower().encode("latin-1") for n in names}
        self._list = [(n, v) for n, v in self._list if n not in keys]

    pop = remove

    def items(self) -> Iterator[tuple[str, str]]:
        for n, v in self._list:
            yield n.decode("latin-1"), v.decode("latin-1")

    def keys(self) -> list[str]:
        return [n.decode("latin-1") for n, _ in self._list]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return self.items()

    def __len__(self) -> int:
        return len(self._list)

    def __bool__(self) -> bool:
        return bool(self._list)

    def copy(self) -> Headers:
        return Headers.from_raw(list(self._list))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._list == other._list
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({list(self.items())!r})"
