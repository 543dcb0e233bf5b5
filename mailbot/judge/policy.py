"""The operator's [intake] settings as two values: what the checks read, what judging runs under.

IntakePolicy is what the checks and the MIME screen read (own addresses,
deny list, authserv-id, size, depth and parts, the seal check's limits); JudgeLimits is how
a mail is judged (in a judging process or not, its time and memory). Both
come from the same [intake] table (mailbot.app), whose keys they keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailbot.documents.scan import SealLimits

MB = 1024 * 1024


@dataclass(frozen=True)
class IntakePolicy:
    """What the operator decided about intake; the defaults are config.example.toml's.

    The call's own mailbox is always one of our addresses; ``own_addresses``
    adds the reply From address and any alias. ``own_domains`` are the call's
    own domains (their subdomains too; empty: the mailbox's). ``deny`` holds exact
    addresses and shell patterns such as ``*@spam.example``. ``authserv_id``
    names the mailbox's own server in Authentication-Results ("" reads none).
    """

    own_addresses: frozenset[str] = frozenset()
    own_domains: frozenset[str] = frozenset()  # empty: the call mailbox's domain
    deny: tuple[str, ...] = ()
    authserv_id: str = ""
    max_mail_size: int = 150 * MB
    max_depth: int = 20
    max_parts: int = 500
    seal: SealLimits = field(default_factory=SealLimits)  # [intake.seal]: the stamp's check

    def __post_init__(self) -> None:
        # Addresses compare case-insensitively, and so do the server names.
        object.__setattr__(
            self, "own_addresses", frozenset(a.strip().lower() for a in self.own_addresses if a)
        )
        object.__setattr__(
            self,
            "own_domains",
            frozenset(d.strip().lstrip("@").lower() for d in self.own_domains if d.strip()),
        )
        object.__setattr__(self, "deny", tuple(p.strip().lower() for p in self.deny if p.strip()))
        object.__setattr__(self, "authserv_id", self.authserv_id.strip().lower())


DEFAULT_POLICY = IntakePolicy()


@dataclass(frozen=True)
class JudgeLimits:
    """How each mail is judged ([intake] isolate, judge_timeout, judge_memory).

    With ``isolate``, in a judging process, killed after ``timeout`` seconds
    or when it maps ``memory`` bytes beyond what it held when it started.
    """

    isolate: bool = True
    timeout: float = 30.0
    memory: int = 512 * MB
