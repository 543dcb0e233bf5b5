"""What a search box in the log matches: reference, institution (with its aliases), PI,
sender address and title. A number alone is a reference number, never part of a date.

An institute's names come from the call's list of CAS institutes
(mailbot.institutes): its full name, the name without 中国科学院, the usual
abbreviation (植物研究所 -> 植物所), its English name, and the short and former
names the list gives. Submissions are keyed by the full name; a database
from before that keys some by the name their first mail wrote, which the
other names find.
"""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, Text, and_, cast, exists, false, func, or_, select
from sqlalchemy.sql.elements import ColumnElement as Column

from mailbot.calls import Call, normalise_name
from mailbot.institutes import directory, spelled
from mailbot.store.models import Mail, Submission, Version

MAX_ALIASED = 40  # institutes one search may stand for, so the query stays small
MAX_NUMBER = 9  # digits of a reference number


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def institution_names(call: Call, wanted: str) -> set[str]:
    """The names to look for when someone searches for ``wanted`` (normalised)."""
    found = {wanted}
    if len(wanted) < 2:
        return found
    institutes = directory(call)
    named = institutes.find(wanted)
    matched = [named] if named is not None else []
    matched += [
        institute
        for institute in institutes.institutes
        if any(wanted in normalise_name(n) for n in spelled(institute))
    ]
    for institute in list(dict.fromkeys(matched))[:MAX_ALIASED]:
        found.update(normalise_name(n) for n in spelled(institute))
    return found


def matches(call: Call, text: str) -> ColumnElement[bool]:
    """The condition a search for ``text`` puts on the log's rows (Submission, Version, Mail)."""
    wanted = normalise_name(text)
    if wanted.isdigit():
        if len(wanted) > MAX_NUMBER:
            return false()
        return Submission.seq == int(wanted)
    plain = text.strip().casefold()
    conditions: list[Column[bool]] = [
        func.lower(Submission.reference).like(_like(wanted), escape="\\"),
        Submission.pi_key.like(_like(wanted), escape="\\"),
        _title_matches(plain),
    ]
    conditions += [
        Submission.institution_key.like(_like(name), escape="\\")
        for name in _fewest(institution_names(call, wanted))
    ]
    if plain.isascii():  # an address is ASCII: a Chinese word never matches one
        conditions.append(
            exists(
                select(Mail.id)
                .where(
                    Mail.submission_id == Submission.id,
                    func.lower(Mail.sender).like(_like(plain), escape="\\"),
                )
                # The log's own rows select a Mail too: this one is any of the submission's.
                .correlate(Submission)
            )
        )
    return or_(*conditions)


def _title_matches(plain: str) -> ColumnElement[bool]:
    """The title holds ``plain``; the form's stored JSON text is looked at first.

    Reading the title out of every form costs a JSON parse a row; the text
    (where json.dumps wrote Chinese as \\uXXXX) is scanned first, and only
    the forms that hold the words are parsed.
    """
    title = func.lower(Version.form["title"].as_string()).like(_like(plain), escape="\\")
    if any(not c.isascii() and c.lower() != c.upper() for c in plain):
        return title  # "É" is stored as \\u00c9: its escape is not the query's, "é"
    stored = json.dumps(plain)[1:-1]
    return and_(
        cast(Version.form, Text).ilike(_like(stored), escape="\\"),
        title,
    )


def _fewest(names: set[str]) -> list[str]:
    """The names no other one is part of: LIKE '%植物所%' already finds '昆明植物所'."""
    return sorted(n for n in names if not any(o != n and o in n for o in names))
