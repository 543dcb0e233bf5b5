"""Parsing and judging under limits: size and structure first, then time and memory in a child."""

from __future__ import annotations

import dataclasses
import email.message
import itertools
import pickle
import re
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import select

from mailbot.app import intake_policy, judge_limits
from mailbot.calls import Call
from mailbot.config import load_settings
from mailbot.judge import bounded
from mailbot.judge.bounded import JudgeError, Overrun, run_bounded
from mailbot.judge.checks import verdict_for
from mailbot.judge.policy import MB, IntakePolicy, JudgeLimits
from mailbot.judge.processes import Judges
from mailbot.judge.verdict import Status, Verdict
from mailbot.mail import screen as screen_module
from mailbot.mail.message import Message
from mailbot.mail.parsing import parse_message
from mailbot.mail.screen import measure_mime, screen
from mailbot.store.models import Mail, Reply
from tests.daemon_support import settings_values
from tests.docfactory import form_docx
from tests.fixtures import AppFactory
from tests.mailfactory import CLIENTS, build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes

BEIJING = timezone(timedelta(hours=8))
ON_TIME = datetime(2021, 7, 20, 10, 0, tzinfo=BEIJING)
STEM = "中国科学院植物研究所+张喆"
SUBJECT = f"合作专项建议书：{STEM}"


def proposal(*extra: Att) -> bytes:
    files = [
        Att(f"{STEM}.docx", form_docx()),
        Att(f"{STEM}.pdf", pdf_bytes(2)),
        Att("合作协议.pdf", pdf_bytes(1, "agreement")),
        *extra,
    ]
    return build_mail("qqmail", subject=SUBJECT, attachments=files)


def judge_bounded(
    raw: bytes,
    call: Call,
    received_at: datetime,
    policy: IntakePolicy,
    limits: JudgeLimits | None = None,
) -> tuple[Message, Verdict]:
    """One mail through a judging process of its own, as the intake judges it."""
    judges = Judges(call, policy, processes=1, limits=limits)
    try:
        judged = judges.judge(raw, received_at)
    finally:
        judges.close()
    return judged.message, judged.verdict


def nested(levels: int) -> bytes:
    head = (
        b"From: a@ibcas.ac.cn\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    )
    return head + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(levels)
    )


def test_in_a_child_the_verdict_is_the_one_judge_gives(call: Call) -> None:
    raw = proposal()
    message, verdict = judge_bounded(raw, call, ON_TIME, IntakePolicy())
    assert verdict.status is Status.ACCEPTED
    assert message == parse_message(raw)
    assert verdict == verdict_for(parse_message(raw), call, ON_TIME)


def test_message_and_verdict_survive_pickling(call: Call) -> None:
    raw = proposal()
    message = parse_message(raw)
    verdict = verdict_for(message, call, ON_TIME)
    assert pickle.loads(pickle.dumps((message, verdict))) == (message, verdict)


def test_a_mail_over_the_time_limit_is_too_complex(call: Call) -> None:
    raw = proposal(Att("big.pdf", b"%PDF-1.4\n" + bytes(20 * MB)))
    started = time.monotonic()
    message, verdict = judge_bounded(raw, call, ON_TIME, IntakePolicy(), JudgeLimits(timeout=0.001))
    assert time.monotonic() - started < 10
    assert verdict.status is Status.IGNORED
    assert verdict.codes() == ["too_complex"]
    assert "longer than" in verdict.problems[0].en
    # What the headers say is kept for the person who reads it.
    assert message.parsed_by == "headers-only"
    assert message.raw_size == len(raw)
    assert message.attachments == ()
    assert message.sender == "zhangzhe@ibcas.ac.cn" or message.sender is None


def test_a_mail_over_the_memory_limit_is_too_complex(call: Call) -> None:
    raw = proposal(Att("big.pdf", b"%PDF-1.4\n" + bytes(40 * MB)))
    message, verdict = judge_bounded(
        raw, call, ON_TIME, IntakePolicy(), JudgeLimits(memory=16 * MB)
    )
    assert verdict.codes() == ["too_complex"]
    assert "memory" in verdict.problems[0].en
    assert message.parsed_by == "headers-only"
    assert message.sender == "zhangzhe@ibcas.ac.cn"
    assert message.subject == SUBJECT


def test_parsers_short_of_memory_make_an_overrun_not_an_unreadable_mail(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    def starved(raw: bytes, *limits: object) -> Message:  # mail-parser ran out, the stdlib did not
        message = parse_message(raw)
        return dataclasses.replace(message, defects=("mail-parser: MemoryError: ",))

    monkeypatch.setattr(bounded, "parse_message", starved)
    _message, verdict = judge_bounded(
        proposal(), call, ON_TIME, IntakePolicy(), JudgeLimits(memory=64 * MB)
    )
    assert verdict.codes() == ["too_complex"]
    assert "more than 64 MB of memory" in verdict.problems[0].en


def test_a_child_that_hangs_is_killed() -> None:
    started = time.monotonic()
    assert run_bounded(time.sleep, (60,), 0.5, 64 * MB) == Overrun("took longer than 0.5 s")
    assert time.monotonic() - started < 5


def test_a_child_that_allocates_too_much_is_stopped() -> None:
    outcome = run_bounded(bytearray, (2 * 1024 * MB,), 10, 64 * MB)
    assert outcome == Overrun("needed more than 64 MB of memory")
    assert run_bounded(bytearray, (MB,), 10, 64 * MB) == bytearray(MB)


def test_a_fault_in_mailbot_reaches_the_per_mail_boundary() -> None:
    with pytest.raises(JudgeError, match="invalid literal"):
        run_bounded(int, ("not a number",), 10, 64 * MB)


@pytest.mark.parametrize("isolate", [True, False])
def test_limits_are_checked_before_any_parser(isolate: bool, call: Call) -> None:
    policy = IntakePolicy(max_depth=5, max_parts=500, max_mail_size=20_000)
    limits = JudgeLimits(isolate=isolate)
    message, verdict = judge_bounded(nested(8), call, ON_TIME, policy, limits)
    assert verdict.codes() == ["too_complex"]
    assert "deeper than 5" in verdict.problems[0].en
    assert message.parsed_by == "headers-only"
    assert message.sender == "a@ibcas.ac.cn"
    _message, verdict = judge_bounded(proposal(), call, ON_TIME, policy, limits)
    assert verdict.codes() == ["too_complex"]
    assert "over the limit of 20 KB" in verdict.problems[0].en
    few = dataclasses.replace(policy, max_mail_size=10 * MB, max_parts=2)
    _message, verdict = judge_bounded(proposal(), call, ON_TIME, few, limits)
    assert verdict.codes() == ["too_complex"]
    assert "more than 2 MIME parts" in verdict.problems[0].en
    enough = dataclasses.replace(few, max_parts=10)
    assert judge_bounded(proposal(), call, ON_TIME, enough, limits)[1].status is Status.ACCEPTED


def _stdlib_shape(raw: bytes) -> tuple[int, int]:
    """(depth, parts) of the tree the standard library builds."""
    depth = parts = 0
    stack = [(message_from_bytes(raw), 0)]
    while stack:
        part, level = stack.pop()
        depth = max(depth, level)
        payload = part.get_payload()
        if isinstance(payload, list):
            parts += len(payload) if part.get_content_maintype() == "multipart" else 0
            stack += [(p, level + 1) for p in payload if isinstance(p, email.message.Message)]
    return depth, parts


@pytest.mark.parametrize("client", CLIENTS)
def test_the_scan_reads_the_tree_as_the_standard_library_does(client: str) -> None:
    raw = build_mail(
        client,
        subject=SUBJECT,
        attachments=[Att(f"{STEM}.docx", form_docx()), Att(f"{STEM}.pdf", pdf_bytes(1))],
    )
    shape = measure_mime(raw, max_depth=20, max_parts=500)
    assert (shape.depth, shape.parts) == _stdlib_shape(raw)


def test_the_shape_of_hostile_trees() -> None:
    assert measure_mime(nested(8), max_depth=100, max_parts=100).depth == 9
    assert measure_mime(nested(10_000), max_depth=20, max_parts=500).depth == 21  # stops early
    forwarded = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--\r\n--o--\r\n"
    )
    assert measure_mime(forwarded, max_depth=20, max_parts=500).depth == 3
    assert measure_mime(b"", max_depth=20, max_parts=500).parts == 0


def test_the_scan_is_one_pass_even_on_hostile_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lines that begin with "--" but are no delimiter: a scan that tried the
    # delimiter pattern again where it had tried it before would be quadratic. Every
    # attempt must start past the last one, at most one per line.
    lines = 200_000
    raw = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n" + b"--x\n" * lines
    tried: list[int] = []
    search = screen_module._search

    class Counted:
        def __init__(self, pattern: re.Pattern[bytes]) -> None:
            self.pattern = pattern

        def match(self, data: bytes, pos: int = 0) -> re.Match[bytes] | None:
            tried.append(pos)
            return self.pattern.match(data, pos)

    def counted(pattern: re.Pattern[bytes], data: bytes, pos: int) -> re.Match[bytes] | None:
        return search(cast("re.Pattern[bytes]", Counted(pattern)), data, pos)

    monkeypatch.setattr(screen_module, "_search", counted)
    assert screen(raw, IntakePolicy()) is None
    assert len(tried) <= lines + 1
    assert all(later > earlier for earlier, later in itertools.pairwise(tried))


def test_the_limits_come_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "mailbot.toml"
    config.write_text(
        '[intake]\nisolate = false\njudge_timeout = "2m"\njudge_memory = "1GB"\n'
        'max_mail_size = "20MB"\nmax_depth = 7\nmax_parts = 99\n'
    )
    settings = load_settings(config)
    intake = settings.intake
    assert (intake.isolate, intake.judge_timeout, intake.judge_memory) == (False, 120.0, 1024 * MB)
    assert (intake.max_mail_size, intake.max_depth, intake.max_parts) == (20 * MB, 7, 99)
    # The same keys, read into the judging limits and the checks' policy.
    assert judge_limits(settings) == JudgeLimits(isolate=False, timeout=120.0, memory=1024 * MB)
    policy = intake_policy(settings)
    assert (policy.max_mail_size, policy.max_depth, policy.max_parts) == (20 * MB, 7, 99)


def test_the_intake_judges_under_the_operators_settings(
    tmp_path: Path, make_app: AppFactory
) -> None:
    """Through the real pipeline: the [intake] settings reach the checks, and every mail is kept."""
    from mailbot.intake.poll import poll
    from mailbot.sources.maildir import deliver

    values = settings_values(
        tmp_path,
        f"sqlite:///{tmp_path / 'mailbot.sqlite3'}",
        intake={"deny": ["*@junk.example"], "judge_timeout": "20s"},
    )
    app = make_app(values)
    maildir = tmp_path / "Maildir"
    deliver(
        maildir, build_mail("foxmail", subject=SUBJECT, sender=("x", "x@junk.example")), ON_TIME
    )
    deliver(maildir, b"\x00\xff garbage \x80", ON_TIME)
    deliver(maildir, nested(60), ON_TIME)
    deliver(maildir, proposal(), ON_TIME)
    report = poll(app, app.open_mailbox())
    assert (report.new, report.failed) == (4, 0)
    with app.db.transaction() as session:
        mails = {
            mail.sender or "?": (mail.status, [p["code"] for p in mail.problems])
            for mail in session.scalars(select(Mail))
        }
        kept = [app.blobs.exists(m.raw_sha256) for m in session.scalars(select(Mail))]
        answered = [r.to_address for r in session.scalars(select(Reply))]
    assert mails["x@junk.example"] == ("ignored", ["denied_sender"])
    assert mails["a@ibcas.ac.cn"] == ("ignored", ["too_complex"])
    assert mails["?"][0] == "ignored"
    assert "unparseable" in mails["?"][1]
    assert mails["zhangzhe@ibcas.ac.cn"] == ("accepted", [])
    assert all(kept)
    assert answered == ["zhangzhe@ibcas.ac.cn"]
