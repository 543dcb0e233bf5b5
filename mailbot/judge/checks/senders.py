"""Senders never answered: our own addresses and domain, loops on our replies, several or denied.

Mail from a colleague at the call's own domain is not an application: it is
recorded and flagged for a person (``own_domain``, see mailbot.ledger.attention).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass

from mailbot.judge.checks.autoreply import automatic_signs
from mailbot.judge.checks.case import Case
from mailbot.judge.policy import IntakePolicy
from mailbot.judge.verdict import Problem, Severity
from mailbot.mail.bounces import our_reply_ids


@dataclass(frozen=True)
class SenderCheck:
    """The addresses a reply would go to, judged against the call and the operator's lists."""

    policy: IntakePolicy

    def __call__(self, case: Case) -> Iterator[Problem]:
        message = case.message
        addresses = [("From", a.lower()) for a in message.from_addresses]
        if message.reply_to:
            addresses.append(("Reply-To", message.reply_to.lower()))
        own = {case.call.call.mailbox.lower(), *self.policy.own_addresses}
        mine = [f"{field}: {address}" for field, address in addresses if address in own]
        if mine:
            yield _problem("own_address", "; ".join(mine))
        else:
            yield from self._own_domain(case, addresses)
        denied = []
        for field, address in addresses:
            pattern = _denied_by(address, self.policy.deny)
            if pattern is not None:
                denied.append(f"{field}: {address} (deny: {pattern})")
        if denied:
            yield _problem("denied_sender", "; ".join(denied))
        senders = list(dict.fromkeys(a.lower() for a in message.from_addresses))
        if len(senders) > 1:
            yield _problem("several_senders", "From: " + ", ".join(senders))
        loop = list(_loop_signs(case))
        if loop:
            yield _problem("loop", "; ".join(loop))

    def _own_domain(self, case: Case, addresses: list[tuple[str, str]]) -> Iterator[Problem]:
        """A colleague at the call's own domain (or a subdomain): for a person, not the bot.

        Our own mail server's bounces and auto-replies come from that domain too:
        they are a machine's (check_autoreply says which), not a colleague's.
        """
        domains = self.policy.own_domains or own_domains_of(case.call.call.mailbox)
        if next(automatic_signs(case), None) is not None:
            return
        ours = [
            f"{field}: {address}"
            for field, address in addresses
            if _in_domains(address.rpartition("@")[2], domains)
        ]
        if ours:
            yield _problem("own_domain", "; ".join(ours))


def own_domains_of(mailbox: str) -> frozenset[str]:
    """The default own domain: the call mailbox's."""
    domain = mailbox.rpartition("@")[2].strip().lower()
    return frozenset({domain}) if domain else frozenset()


def _in_domains(domain: str, domains: frozenset[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in domains)


def _denied_by(address: str, patterns: tuple[str, ...]) -> str | None:
    return next((p for p in patterns if fnmatch.fnmatchcase(address, p)), None)


def _loop_signs(case: Case) -> Iterator[str]:
    """Our own reply come back, or a machine answering one of our replies."""
    message = case.message
    if message.message_id and our_reply_ids([message.message_id]):
        yield f"Message-ID: {message.message_id} (one of our own replies)"
        return
    answered = our_reply_ids([message.in_reply_to or "", *message.references])
    if not answered:
        return
    signs = list(
        dict.fromkeys(
            why
            for code, why in automatic_signs(case, even_with_proposal=True)
            if code != "no_sender"
        )
    )
    if signs:
        yield f"answers our reply {answered[-1]} by machine: " + "; ".join(signs)


_WHY = {
    "own_address": (
        "发件人是本征集活动自己的邮箱，不予答复",
        "The mail comes from one of this call's own addresses and gets no answer",
    ),
    "own_domain": (
        "发件人来自本征集活动自己的域名，不是申请邮件，已转工作人员处理，不予自动答复",
        "The mail comes from the call's own domain: it is no application; it is left to the "
        "secretariat and gets no automatic answer",
    ),
    "denied_sender": (
        "发件人在拒收名单上，不予答复",
        "The sender is on the deny list and gets no answer",
    ),
    "several_senders": (
        "发件人栏有多个地址，无法确定答复对象，不予答复",
        "The From field holds several addresses, so there is no one to answer",
    ),
    "loop": (
        "这封邮件是本系统的回复被退回或被自动应答，不予答复以免循环",
        "This mail is one of our replies come back, or a machine's answer to one, and gets "
        "no answer, to avoid a loop",
    ),
}


def _problem(code: str, evidence: str) -> Problem:
    zh, en = _WHY[code]
    return Problem(code, Severity.INFO, f"{zh}（{evidence}）。", f"{en} ({evidence}).")
