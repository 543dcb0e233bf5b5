"""Counts in words a person reads: "1 mail", "2 mails", "0 replies"."""

from __future__ import annotations


def count(number: int, singular: str, plural: str | None = None) -> str:
    """The number and the noun that agrees with it (English: only 1 takes the singular)."""
    if number == 1:
        return f"{number} {singular}"
    return f"{number} {plural if plural is not None else singular + 's'}"
