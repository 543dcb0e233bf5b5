"""IntakePolicy: the operator's settings the never-answer checks read (config [intake])."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class IntakePolicy:
    """What the operator decided about intake; the defaults are config.example.toml's.

    The call's own mailbox is always one of our addresses; ``own_addresses``
    adds the reply From address and any alias. ``deny`` holds exact
    addresses and shell patterns such as ``*@spam.example``. ``authserv_id``
    names the mailbox's own server in Authentication-Results ("" reads none).
    """

    own_addresses: frozenset[str] = frozenset()
    deny: tuple[str, ...] = ()
    authserv_id: str = ""
    max_mail_size: int = 150 * MB
    max_depth: int = 20
    max_parts: int = 500
    isolate: bool = True
    judge_timeout: float = 30.0
    judge_memory: int = 512 * MB

    def __post_init__(self) -> None:
        # Addresses compare case-insensitively, and so do the server names.
        object.__setattr__(
            self, "own_addresses", frozenset(a.strip().lower() for a in self.own_addresses if a)
        )
        object.__setattr__(self, "deny", tuple(p.strip().lower() for p in self.deny if p.strip()))
        object.__setattr__(self, "authserv_id", self.authserv_id.strip().lower())


DEFAULT_POLICY = IntakePolicy()
