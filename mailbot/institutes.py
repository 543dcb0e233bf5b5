"""One institution under many names: the call's list of CAS institutes as a directory.

Each line of the list (the file ``[lists] cas_institutes`` names) is one
institute: its full Chinese name first, then after `` | `` its English name
and any further names it goes by (a customary short name, a former name).
Besides those, an institute answers to the names applicants derive from its
full name: without 中国科学院, with 中科院 for it, and abbreviated
(植物研究所 -> 植物所); an English name with or without ", CAS" or ", Chinese
Academy of Sciences". A name two institutes could both go by belongs to
neither. Submissions are keyed by the full name (the canonical name).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from mailbot.calls import Call, normalise_name

CAS = "中国科学院"
_ENGLISH_CAS = ("chineseacademyofsciences", "cas")


@dataclass(frozen=True)
class Institute:
    """One institute: its canonical (full) name and every name it goes by, as written."""

    name: str
    names: tuple[str, ...]


def abbreviated(full: str) -> str:
    """The usual short form of a Chinese institute's name: 植物研究所 -> 植物所."""
    return full.replace("研究所", "所").replace("研究院", "院")


def name_key(text: str) -> str:
    """A name reduced to what tells institutes apart: no CAS prefix or suffix, no punctuation."""
    key = normalise_name(text).replace("中科院", CAS)
    key = "".join(ch for ch in key if not unicodedata.category(ch).startswith(("P", "Z")))
    key = key.removeprefix(CAS)
    if key.isascii():
        key = key.removeprefix("the")
        for suffix in _ENGLISH_CAS:
            if key.endswith(suffix) and len(key) > len(suffix) + 3:
                key = key.removesuffix(suffix)
                break
        if key.startswith("cas") and len(key) > 6:
            key = key.removeprefix("cas")
    return key


class Directory:
    """Every institute of the list, found by any of its names."""

    def __init__(self, lines: Sequence[Sequence[str]]) -> None:
        self.institutes: tuple[Institute, ...] = tuple(
            _institute(line) for line in lines if line and line[0].strip()
        )
        owners: dict[str, set[int]] = {}
        for index, institute in enumerate(self.institutes):
            for name in institute.names:
                for key in {name_key(name), name_key(abbreviated(name))}:
                    if key:
                        owners.setdefault(key, set()).add(index)
        self._by_key = {key: found.pop() for key, found in owners.items() if len(found) == 1}

    def find(self, name: str) -> Institute | None:
        """The institute ``name`` stands for, or None when it is none of the list or several."""
        index = self._by_key.get(name_key(name))
        return None if index is None else self.institutes[index]

    def canonical(self, name: str) -> str:
        """The institute's full name for any of its names; an unknown name as it is written."""
        institute = self.find(name)
        return name if institute is None else institute.name

    def keys(self, name: str) -> tuple[str, ...]:
        """The stored keys (normalise_name) a submission of this institution may have:
        the canonical name's first, then every other name (older databases stored the
        name as the subject wrote it)."""
        institute = self.find(name)
        if institute is None:
            return (normalise_name(name),)
        written = [normalise_name(n) for n in (institute.name, *spelled(institute), name)]
        return tuple(dict.fromkeys(written))


def spelled(institute: Institute) -> tuple[str, ...]:
    """The ways applicants write the institute: each name, without 中国科学院, 中科院 for it,
    abbreviated."""
    forms: list[str] = []
    for name in institute.names:
        forms.append(name)
        if name.startswith(CAS):
            short = name.removeprefix(CAS)
            forms += [short, abbreviated(short), "中科院" + short, "中科院" + abbreviated(short)]
            forms.append(abbreviated(name))
        elif not name.isascii():
            forms.append(abbreviated(name))
    return tuple(dict.fromkeys(f for f in forms if f))


def _institute(line: Sequence[str]) -> Institute:
    names = tuple(dict.fromkeys(part.strip() for part in line if part.strip()))
    return Institute(name=names[0], names=names)


@lru_cache(maxsize=8)
def _directory(lines: tuple[tuple[str, ...], ...]) -> Directory:
    return Directory(lines)


def directory(call: Call) -> Directory:
    """The call's directory of CAS institutes (empty when the call has no list)."""
    lines = tuple(tuple(line) for line in call.institution_lists.cas_institute_lines)
    return _directory(lines)
