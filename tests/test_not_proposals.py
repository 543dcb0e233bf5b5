"""Mail that is no proposal: real bounces and list notices, colleagues, invitations; odd names.

Bounces whose sender is spelt ``post_master`` or ``mailer_daemon``, a list
server's "Loop Alert" with its X-MLServer / X-ML-Name / X-Sequence headers,
a colleague writing from the call's own domain and a calendar invitation are
recorded and never answered (the last two flagged for a person); a proposal
that merely talks of returned mail is judged as any other. A file named
``….docx.`` is the .docx Windows makes of it, not an archive. Each case is
judged by `mailbot check`, then run end to end through `mailbot run --once`
on a Maildir and on Dovecot.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.app import App
from mailbot.calls import Call
from mailbot.cli import main
from mailbot.config import load_settings
from mailbot.judge.checks import verdict_for
from mailbot.ledger.attention import NEEDS_A_PERSON
from mailbot.mail.parsing import parse_message
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import Mail, Reply
from mailbot.web.files import content_disposition, content_type
from tests.conftest import RULES, SHARED, CheckRunner, codes, mailbot_in_process, roles
from tests.daemon_support import (
    PASSWORD_ENV,
    july,
    proposal,
    settings_values,
    toml,
)
from tests.docfactory import Form, form_docx
from tests.fixtures import AppFactory
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.calendar import INVITATION_CLIENTS, build_invitation
from tests.mailfactory.documents import pdf_bytes
from tests.servers.dovecot import Dovecot

MAILBOX = "anso2021program@anso.org.cn"
INST, PI = "中国科学院微生物研究所", "李娜"
STEM = f"{INST}+{PI}"


def _problem(verdict: dict[str, Any], code: str) -> str:
    return str(next(p["message_en"] for p in verdict["problems"] if p["code"] == code))


# --------------------------------------------------------------------------- real bounces


OUR_REPLY = "<mailbot.0123456789abcdef0123456789abcdef@anso.org.cn>"


def server_bounce(
    local: str,
    domain: str = "cstnet.cn",
    *,
    returned: str = OUR_REPLY,
    recipient: str = "zhangzhe@ibcas.ac.cn",
) -> bytes:
    """A delivery failure as a Coremail server writes it: plain text, the sender its postmaster.

    No delivery-status part, no ``Return-Path: <>`` and a subject no bounce
    pattern knows: the sender's local part is all that shows a machine wrote it.
    """
    when = format_datetime(july(20, 10, 1))
    return (
        f"Return-Path: <{local}@{domain}>\r\n"
        f"From: {local}@{domain}\r\n"
        f"To: {MAILBOX}\r\n"
        "Subject: =?UTF-8?B?6YKu5Lu25oqV6YCS5oql5ZGK?= Mail delivery report\r\n"
        f"Date: {when}\r\n"
        f"Message-ID: <report.{local}.20210720@{domain}>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "您发送的邮件未能到达以下收件人 / Your mail did not reach:\r\n"
        f"  {recipient}\r\n"
        "原因 Reason: 550 Mailbox not found\r\n"
        "\r\n"
        "----- 原邮件头 Original headers -----\r\n"
        f"From: {MAILBOX}\r\n"
        f"To: {recipient}\r\n"
        f"Message-ID: {returned}\r\n"
    ).encode()


SPELLINGS = ["post_master", "Post.Master", "mailer_daemon", "Mail-Daemon", "MAILER_DAEMON"]


@pytest.mark.parametrize("local", SPELLINGS)
def test_a_bounce_from_any_spelling_of_the_daemon_or_postmaster_is_ignored(
    check: CheckRunner, local: str
) -> None:
    verdict = check(server_bounce(local), received_at=july(20, 10, 1))
    assert verdict["status"] == "ignored"
    assert f"From: {local}@cstnet.cn" in _problem(verdict, "bounce")


def test_a_post_master_bounce_of_our_reply_marks_that_reply_bounced(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(settings_values(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    deliver(tmp_path / "Maildir", proposal("coremail", INST, PI), july(20))
    _, sent = Daemon(app).once()
    assert sent.sent == 1
    with app.db.transaction() as session:
        reply = session.scalars(select(Reply)).one()
    bounce = server_bounce("post_master", returned=reply.message_id, recipient=reply.to_address)
    deliver(tmp_path / "Maildir", bounce, july(20, 10, 5))
    report, sent = Daemon(app).once()
    assert (report.new, sent.sent) == (1, 0)  # recorded, never answered
    with app.db.transaction() as session:
        assert session.get_one(Reply, reply.id).state == "bounced"


def _corpus() -> list[Path]:
    folder = SHARED / "corpora" / "sisimai-bounces"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the team's sample corpora are not beside this checkout")
    return sorted(folder.glob("*.eml"))


_DAEMON_FROM = re.compile(rb"(?im)^(From:[^\r\n]*?)(?<![\w.+-])(mailer-daemon|postmaster)@")


def test_real_bounces_sent_as_post_master_or_mailer_daemon_are_known_by_their_sender(
    call: Call,
) -> None:
    """Every real bounce whose sender is MAILER-DAEMON or postmaster, that sender respelt."""
    respelt = 0
    for path in _corpus():
        raw = path.read_bytes()
        if not _DAEMON_FROM.search(raw):
            continue
        for local in ("post_master", "mailer_daemon", "Mail-Daemon"):
            changed = _DAEMON_FROM.sub(rb"\1" + local.encode() + b"@", raw, count=1)
            data = _judge(changed, call)
            assert data["status"] == "ignored", path.name
            assert f"From: {local}@" in _problem(data, "bounce"), path.name
            respelt += 1
    assert respelt >= 3 * 100


def _judge(raw: bytes, call: Call) -> dict[str, Any]:
    """The `check --json` object, judged in this process (for the corpus's hundreds of mails)."""
    return verdict_for(parse_message(raw), call, july(20)).as_json()


def loop_alert() -> bytes:
    """fml's notice to a list's maintainer that a mail went round in a loop.

    fml writes its own headers (X-MLServer, X-ML-Name, X-ML-Count, X-Sequence)
    and, in the 2.x series many institutes still run, no List-* or Precedence.
    """
    return (
        "Return-Path: <anso-partners-admin@lists.ibcas.ac.cn>\r\n"
        "From: anso-partners-admin@lists.ibcas.ac.cn\r\n"
        f"To: {MAILBOX}\r\n"
        "Subject: Loop Alert\r\n"
        f"Date: {format_datetime(july(21, 9, 12))}\r\n"
        "Message-ID: <202107210912.JAA01234@lists.ibcas.ac.cn>\r\n"
        "X-MLServer: fml [fml 2.2.1]; post only (only members can post)\r\n"
        "X-ML-Name: anso-partners\r\n"
        "X-ML-Count: 1207\r\n"
        "X-Sequence: anso-partners 1207\r\n"
        "X-Mailer: fml [fml 2.2.1]\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "fml <anso-partners-admin@lists.ibcas.ac.cn> detected a loop:\r\n"
        "the mail below already carries our X-ML-Name and is not distributed.\r\n"
        "\r\n"
        "X-ML-Name: anso-partners\r\n"
        "Subject: Re: [anso-partners:01206] meeting\r\n"
    ).encode()


def mailman_notice() -> bytes:
    """A Mailman 2 notice to the list's owner: X-Mailman-Version and X-BeenThere, no List-*."""
    return (
        "From: partners-bounces@lists.ibcas.ac.cn\r\n"
        f"To: {MAILBOX}\r\n"
        "Subject: Your message to Partners awaits moderator approval\r\n"
        f"Date: {format_datetime(july(21, 9, 30))}\r\n"
        "Message-ID: <mailman.7.1626831000.1234.partners@lists.ibcas.ac.cn>\r\n"
        "X-BeenThere: partners@lists.ibcas.ac.cn\r\n"
        "X-Mailman-Version: 2.1.29\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "Your mail to 'Partners' with the subject meeting is being held until\r\n"
        "the list moderator can review it for approval.\r\n"
    ).encode()


def test_a_list_servers_loop_alert_is_ignored_by_its_headers_and_subject(
    check: CheckRunner,
) -> None:
    verdict = check(loop_alert(), received_at=july(21, 9, 12))
    assert verdict["status"] == "ignored"
    evidence = _problem(verdict, "bulk")
    for header in ("X-Mlserver:", "X-Ml-Name:", "X-Ml-Count:", "X-Sequence:", "Loop Alert"):
        assert header in evidence


def test_a_mailman_notice_without_list_headers_is_ignored(check: CheckRunner) -> None:
    verdict = check(mailman_notice(), received_at=july(21, 9, 30))
    assert verdict["status"] == "ignored"
    assert "X-Mailman-Version: 2.1.29" in _problem(verdict, "bulk")


@pytest.mark.parametrize(
    "subject",
    ["Loop Alert", "Returned mail: see transcript for details", "Undelivered Mail"],
)
def test_a_machines_subject_on_mail_without_a_proposal_is_ignored(
    check: CheckRunner, subject: str
) -> None:
    raw = build_mail("raw_utf8", subject=subject, sender=("", "notice@lists.ibcas.ac.cn"))
    assert check(raw, received_at=july(21))["status"] == "ignored"


def returned_mail_proposal(client: str = "outlook") -> bytes:
    """An applicant's proposal whose body explains that an earlier mail came back."""
    return proposal(
        client,
        INST,
        PI,
        body="您好！上次发送的邮件被退回（Returned mail: Undelivered Mail），"
        "现重新发送合作专项建议书，请查收。Loop alert 之类的提示请忽略。",
    )


def test_a_proposal_that_mentions_returned_mail_is_judged_as_any_other(
    check: CheckRunner,
) -> None:
    verdict = check(returned_mail_proposal(), received_at=july(22))
    assert verdict["status"] == "accepted", codes(verdict)
    assert verdict["institution"] == INST


def test_a_proposal_carrying_a_list_servers_headers_is_still_judged(check: CheckRunner) -> None:
    """The list server's headers are weak evidence: a proposal beside them is judged."""
    raw = proposal("coremail", INST, PI, headers=[("X-Sequence", "ibcas-all 88")])
    assert check(raw, received_at=july(22))["status"] == "accepted"


# --------------------------------------------------------------------------- names


def dotted_proposal(client: str) -> bytes:
    """Word and PDF whose names keep the dot (and space) Windows would have dropped."""
    return build_mail(
        client,
        subject=f"合作专项建议书：{STEM}",
        sender=(PI, "lina@im.ac.cn"),
        attachments=[
            Att(f"{STEM}.docx.", form_docx(Form(institution=INST, pi=PI))),
            Att(f"{STEM}.pdf. ", pdf_bytes(2), "application/pdf"),
            Att("合作协议.pdf", pdf_bytes(1)),
        ],
    )


@pytest.mark.parametrize("client", ["outlook", "foxmail", "qqmail", "gmail"])
def test_a_trailing_dot_after_the_extension_is_dropped_before_the_type_is_decided(
    check: CheckRunner, client: str
) -> None:
    verdict = check(dotted_proposal(client), received_at=july(22))
    assert verdict["status"] == "accepted", codes(verdict)
    assert "archive_attachment" not in codes(verdict)
    kinds = sorted(roles(verdict).values())
    assert kinds == ["pdf", "supporting", "word"], roles(verdict)  # no XML parts listed


def test_a_file_with_an_unknown_extension_is_never_opened_as_an_archive() -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    for name in ("说明.docx_", "说明.wpsx", "说明.文档"):
        raw = build_mail(
            "foxmail", subject="x", attachments=[Att(name, inner.getvalue(), "application/zip")]
        )
        message = parse_message(raw)
        assert message.containers == (), name
        assert [a.filename for a in message.attachments] == [name]


def test_the_desk_serves_a_dotted_name_as_its_type_and_saves_it_without_the_dot() -> None:
    assert content_type(f"{STEM}.pdf. ") == "application/pdf"
    assert content_type(f"{STEM}.docx.").endswith("wordprocessingml.document")
    assert content_type("说明.docx_") == "application/octet-stream"
    assert f"filename*=UTF-8''{quote(STEM + '.pdf', safe='')}" in content_disposition(
        f"{STEM}.pdf."
    )


# --------------------------------------------------------------------------- own domain, invitations


def colleague_mail(address: str = "liwei@anso.org.cn") -> bytes:
    """A colleague at the call's own domain forwarding a proposal she was sent."""
    return build_mail(
        "outlook",
        subject=f"合作专项建议书：{STEM}",
        sender=("李薇", address),
        attachments=[
            Att(f"{STEM}.docx", form_docx(Form(institution=INST, pi=PI))),
            Att(f"{STEM}.pdf", pdf_bytes(2)),
        ],
        body="这份申请是申请人发到我个人邮箱的，转给专项邮箱。",
    )


@pytest.mark.parametrize("address", ["liwei@anso.org.cn", "liwei@mail.anso.org.cn"])
def test_mail_from_the_calls_own_domain_is_ignored_and_flagged(
    check: CheckRunner, address: str
) -> None:
    verdict = check(colleague_mail(address), received_at=july(22))
    assert verdict["status"] == "ignored"
    assert codes(verdict) == ["own_domain"]
    assert f"From: {address}" in _problem(verdict, "own_domain")
    assert "own_domain" in NEEDS_A_PERSON


def test_a_look_alike_domain_is_no_own_domain(check: CheckRunner) -> None:
    verdict = check(colleague_mail("liwei@fakeanso.org.cn"), received_at=july(22))
    assert "own_domain" not in codes(verdict)


def test_own_domains_in_the_config_replace_the_mailboxs(tmp_path: Path) -> None:
    config = tmp_path / "mailbot.toml"
    config.write_text('[intake]\nown_domains = ["anso.ac.cn"]\n', encoding="utf-8")
    path = tmp_path / "mail.eml"
    found = {}
    for address in ("liwei@anso.ac.cn", "liwei@anso.org.cn"):
        path.write_bytes(colleague_mail(address))
        result = CliRunner().invoke(
            main, ["--config", str(config), "check", str(path), "--json", "--rules", str(RULES)]
        )
        assert result.exit_code == 0, result.output
        found[address] = codes(json.loads(result.stdout))
    assert found["liwei@anso.ac.cn"] == ["own_domain"]
    assert "own_domain" not in found["liwei@anso.org.cn"]


def test_the_calls_own_mailbox_stays_an_own_address_not_a_colleague(check: CheckRunner) -> None:
    assert codes(check(colleague_mail(MAILBOX), received_at=july(22))) == ["own_address"]


def test_our_own_mail_servers_bounce_is_a_bounce_not_a_colleague(check: CheckRunner) -> None:
    verdict = check(server_bounce("MAILER-DAEMON", "mx.anso.org.cn"), received_at=july(20))
    assert codes(verdict) == ["bounce"]


@pytest.mark.parametrize("client", INVITATION_CLIENTS)
def test_a_calendar_invitation_is_ignored_and_flagged(check: CheckRunner, client: str) -> None:
    verdict = check(build_invitation(client), received_at=july(22))
    assert verdict["status"] == "ignored"
    assert codes(verdict) == ["calendar_invitation"]
    assert "calendar_invitation" in NEEDS_A_PERSON
    assert "method=REQUEST" in _problem(verdict, "calendar_invitation")


def test_a_published_event_is_no_invitation(call: Call) -> None:
    raw = build_invitation("outlook").replace(b"method=REQUEST", b"method=PUBLISH")
    assert parse_message(raw).calendar_methods == ("PUBLISH",)
    assert "calendar_invitation" not in codes(_judge(raw, call))


# --------------------------------------------------------------------------- end to end

# (what, the mail, when it came, its status, flagged for a person)
CASES: list[tuple[str, Callable[[], bytes], int, str, bool]] = [
    ("post_master bounce", lambda: server_bounce("post_master"), 20, "ignored", True),
    ("mailer_daemon bounce", lambda: server_bounce("mailer_daemon"), 20, "ignored", True),
    ("fml loop alert", loop_alert, 21, "ignored", False),
    ("mailman notice", mailman_notice, 21, "ignored", False),
    ("colleague", colleague_mail, 22, "ignored", True),
    ("outlook invitation", lambda: build_invitation("outlook"), 22, "ignored", True),
    ("gmail invitation", lambda: build_invitation("gmail"), 22, "ignored", True),
    ("trailing dots", lambda: dotted_proposal("foxmail"), 23, "accepted", False),
    ("mentions returned mail", lambda: returned_mail_proposal("qqmail"), 23, "accepted", False),
]


def _mailbot(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = mailbot_in_process("--config", str(config), *args, env=env)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _assert_recorded_unanswered_flagged(values: dict[str, Any], sent: dict[str, bytes]) -> None:
    app = App.build(load_settings(None, **values))
    try:
        with app.db.transaction() as session:
            mails = session.scalars(select(Mail)).all()
            assert len(mails) == len(CASES)
            answered = {r.mail_id for r in session.scalars(select(Reply))}
            for what, _make, _day, status, _flagged in CASES:
                mail = next(m for m in mails if m.message_id == _message_id(sent[what]))
                assert mail.status == status, (what, mail.problems)
                assert app.blobs.get(mail.raw_sha256) == sent[what], what  # stored whole
                assert (mail.id in answered) == (status != "ignored"), what
    finally:
        app.close()


def _needing_a_person(log: str) -> set[int]:
    return {int(n) for n in re.findall(r"^  mail (\d+) ", log, re.M)}


def _flagged_ids(values: dict[str, Any], ids: set[int]) -> set[str]:
    app = App.build(load_settings(None, **values))
    try:
        with app.db.transaction() as session:
            return {
                m.message_id or "" for m in session.scalars(select(Mail).where(Mail.id.in_(ids)))
            }
    finally:
        app.close()


def _message_id(raw: bytes) -> str:
    match = re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", raw)
    assert match is not None
    return match.group(1).decode()


def _expected_flagged(sent: dict[str, bytes]) -> set[str]:
    return {_message_id(sent[what]) for what, *_rest, flagged in CASES if flagged}


@pytest.mark.slow  # `mailbot run --once` over every case, mail by mail
def test_run_once_on_a_maildir_records_all_answers_only_proposals_flags_the_rest(
    tmp_path: Path,
) -> None:
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    sent = {}
    for what, make, day, _status, _flagged in CASES:
        sent[what] = make()
        deliver(tmp_path / "Maildir", sent[what], july(day))
    _mailbot(config, "init")
    once = _mailbot(config, "run", "--once")
    assert f"{len(CASES)} new (accepted 2, ignored {len(CASES) - 2})" in once
    _assert_recorded_unanswered_flagged(values, sent)
    outbox = [p.read_bytes() for p in (tmp_path / "outbox").rglob("*.eml")]
    assert len(outbox) == 2
    assert all(b"lina@im.ac.cn" in r or b"@example.ac.cn" in r for r in outbox)
    flagged = _flagged_ids(values, _needing_a_person(_mailbot(config, "log")))
    assert flagged == _expected_flagged(sent)


def test_run_once_on_dovecot_records_all_answers_only_proposals_flags_the_rest(
    mailbox: Dovecot, tmp_path: Path
) -> None:
    values = settings_values(tmp_path, f"sqlite:///{tmp_path / 'mailbot.sqlite3'}", imap=mailbox)
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    env = {PASSWORD_ENV: mailbox.password}
    sent = {}
    for what, make, day, _status, _flagged in CASES:
        sent[what] = make()
        mailbox.append("INBOX", sent[what], july(day))
    _mailbot(config, "init", env=env)
    once = _mailbot(config, "run", "--once", env=env)
    assert f"{len(CASES)} new (accepted 2, ignored {len(CASES) - 2})" in once
    _assert_recorded_unanswered_flagged(values, sent)
    assert len(mailbox.fetch_all("mailbot.ignored")) == len(CASES) - 2
    assert len(mailbox.fetch_all("mailbot.accepted")) == 2
    assert mailbox.fetch_all("INBOX") == []
    flagged = _flagged_ids(values, _needing_a_person(_mailbot(config, "log", env=env)))
    assert flagged == _expected_flagged(sent)
