"""The hourly reply limits: per recipient and per recipient domain, whoever the mail named.

Replies go to a mail's Reply-To, else its From, so a stranger can aim them
at anyone. Two limits bound that, both over the hour before a reply is
queued (replies suppressed by them do not count):

- ``per_sender_hourly_limit`` replies per *normalised* address: lower case,
  a ``+tag`` dropped from the local part, the domain without a final dot and
  in its ASCII (IDNA) form, so ``Victim+1@Example.org`` and ``victim@example.org``
  are one address;
- ``per_domain_hourly_limit`` replies per domain, however many addresses.

A reply that answers a mail is counted against the address it goes to and
against the mail's From and Reply-To alike: a mail from ``a@x`` with
``Reply-To: b@y`` uses up one reply of ``a@x``, ``b@y``, ``x`` and ``y``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.config import ReplySettings
from mailbot.domain import ReplyState
from mailbot.store.models import Mail, Reply

WINDOW = timedelta(hours=1)


@lru_cache(maxsize=4096)
def normalised(address: str) -> str | None:
    """The address as the limits count it, or None when it is no address at all."""
    local, at, domain = address.strip().rpartition("@")
    local = local.strip('"').lower()
    local = local.partition("+")[0] or local  # "+tag@x" has nothing before its tag: kept whole
    domain = domain.strip().rstrip(".").lower()
    if not at or not local or not domain:
        return None
    # A name IDNA cannot write is counted as it stands.
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def charged(addresses: Iterable[str | None]) -> frozenset[str]:
    """The normalised addresses a reply counts against: its recipient, the mail's From, Reply-To."""
    return frozenset(n for n in (normalised(a) for a in addresses if a) if n is not None)


def domain(address: str) -> str:
    """The domain of a normalised address."""
    return address.rpartition("@")[2]


@dataclass(frozen=True)
class Tally:
    """The replies of the last hour, per normalised address and per domain."""

    addresses: Counter[str]
    domains: Counter[str]


# Where a transaction keeps the replies of the hour it read once, and those it queued since:
# a batch of mails queues many replies, and each is counted without reading them all again.
_SEEN = "mailbot.recent_replies"


@dataclass
class _Seen:
    """The counted replies a transaction knows: read for the hour before ``since``, and after."""

    since: datetime
    replies: list[tuple[datetime, frozenset[str]]]  # when queued, whom it counts against


def recent(session: Session, now: datetime) -> Tally:
    """Count the replies queued in the hour before ``now`` that were not suppressed.

    Read once a transaction; the replies it queues later are added by :func:`counted`.
    """
    seen = session.info.get(_SEEN)
    if not isinstance(seen, _Seen) or now < seen.since:
        seen = _read(session, now)
        session.info[_SEEN] = seen
    addresses: Counter[str] = Counter()
    domains: Counter[str] = Counter()
    for queued_at, each in seen.replies:
        if now - WINDOW < queued_at <= now:
            addresses.update(each)
            domains.update({domain(a) for a in each})
    return Tally(addresses, domains)


def _read(session: Session, now: datetime) -> _Seen:
    rows = session.execute(
        select(Reply.queued_at, Reply.to_address, Mail.sender, Mail.reply_to)
        .outerjoin(Mail, Reply.mail_id == Mail.id)
        .where(
            Reply.state != ReplyState.SUPPRESSED,
            Reply.queued_at > now - WINDOW,
            Reply.queued_at <= now,
        )
    )
    return _Seen(now, [(queued_at, charged(rest)) for queued_at, *rest in rows])


def counted(session: Session, queued_at: datetime, named: frozenset[str]) -> None:
    """A reply this transaction queued that counts (not suppressed): later tallies see it."""
    seen = session.info.get(_SEEN)
    if isinstance(seen, _Seen):
        seen.replies.append((queued_at, named))


def over_limit(
    session: Session, settings: ReplySettings, to_address: str, named: frozenset[str], now: datetime
) -> str | None:
    """Why one more reply to ``to_address`` (answering a mail naming ``named``) is not sent.

    None when it may go out. ``named`` holds the normalised addresses the
    reply counts against (see :func:`charged`).
    """
    per_address, per_domain = settings.per_sender_hourly_limit, settings.per_domain_hourly_limit
    if not named or not (per_address or per_domain):
        return None
    tally = recent(session, now)
    before = now.isoformat(timespec="seconds")
    target = normalised(to_address)
    for address in sorted(named, key=lambda a: (a != target, a)):
        if per_address and tally.addresses[address] >= per_address:
            whose = "" if address == target else f" (named by the mail answered; to {to_address})"
            return (
                f"not sent: {address}{whose} already had {per_address} replies in the hour "
                f"before {before} (replies.per_sender_hourly_limit)"
            )
    for name in sorted({domain(a) for a in named}):
        if per_domain and tally.domains[name] >= per_domain:
            return (
                f"not sent to {to_address}: the domain {name} already had {per_domain} "
                f"replies in the hour before {before} (replies.per_domain_hourly_limit)"
            )
    return None
