"""The ledger: the CLI, the desk and the digest read one view of the intake, and agree on it.

One database holds every kind of mail: the demo's mailbox run through the
daemon (accepted, needing correction, late, an auto-reply, a bounce of a
stranger's mail), hostile mail, a bounce of one of our replies, and mail
the pipeline marks unreadable, too complex, unjudged or failing sender
authentication, with letters that failed or may not have arrived.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import event, select

from mailbot.ledger.attention import NEEDS_A_PERSON
from mailbot.ledger.export import export_rows, spreadsheet_safe, to_csv
from mailbot.ledger.facts import Facts
from mailbot.ledger.log import LogQuery, log_rows
from mailbot.replies.digest import digest_context
from mailbot.store.models import Mail, Reply, Submission, Version
from tests.conftest import mailbot_in_process
from tests.daemon_support import july
from tests.web_support import Client, RunningDesk, running_desk

# Every test here works on a desk filled through the whole pipeline.
pytestmark = pytest.mark.slow

# Mail the demo cannot produce, as the pipeline records it (status, problem code).
TROUBLE = [("ignored", "too_complex"), ("ignored", "unjudged"), ("accepted", "auth_failed")]
TROUBLE += [("ignored", "unparseable"), ("ignored", "own_domain")]
TROUBLE += [("ignored", "calendar_invitation"), ("ignored", "thread_followup")]
TROUBLE += [("accepted", "pi_ongoing_project"), ("accepted", "same_files_as")]


def _add_trouble(desk: RunningDesk) -> None:
    with desk.app.db.transaction() as session:
        for n, (status, code) in enumerate(TROUBLE):
            session.add(
                Mail(
                    call_id=desk.app.call.id,
                    source="maildir:test",
                    folder="INBOX",
                    location=f"trouble-{n}",
                    raw_sha256=f"{n:064x}",
                    raw_size=100,
                    sender=f"trouble{n}@example.org",
                    subject=f"trouble {code}",
                    received_at=july(28, 9 + n),
                    status=status,
                    problems=[{"code": code, "severity": "info", "message_zh": code}],
                    settled=True,
                )
            )
        replies = session.scalars(
            select(Reply).where(Reply.state == "sent").order_by(Reply.id)
        ).all()
        replies[0].state, replies[1].state = "failed", "uncertain"


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    with running_desk(tmp_path_factory.mktemp("ledger") / "demo") as running:
        _add_trouble(running)
        yield running


@pytest.fixture
def signed_in(desk: RunningDesk) -> Client:
    client = Client(desk.url)
    assert client.login().status == 303
    return client


def cli(desk: RunningDesk, *args: str) -> str:
    result = mailbot_in_process("--config", str(desk.root / "mailbot.toml"), *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_cli_desk_and_digest_agree_on_counts_and_on_needs_a_person(
    desk: RunningDesk, signed_in: Client
) -> None:
    with desk.app.db.transaction() as session:
        submissions = len(session.scalars(select(Submission.id)).all())
        digest = digest_context(session, desk.app.call, since=None, now=july(31, 12))
    log = cli(desk, "log")
    assert f"{submissions} submissions (" in log
    cli_mails = {int(n) for n in re.findall(r"^  mail (\d+) ", log, re.M)}
    cli_letters = {int(n) for n in re.findall(r"^  reply (\d+) ", log, re.M)}
    needing = int(re.search(r"Needing a person: (\d+)", log).group(1))  # type: ignore[union-attr]

    desk_log = signed_in.get("/log").text
    assert re.search(rf'id="count">{submissions} / {submissions} ', desk_log)
    overview = signed_in.get("/").text
    attention = overview[overview.index('id="attention"') : overview.index('id="activity"')]
    desk_mails = {int(n) for n in re.findall(r'href="/mails/(\d+)"', attention)}
    desk_letters = {int(n) for n in re.findall(r"Reply</span> #(\d+)", attention)}
    assert re.search(rf'class="count">{needing}<', attention)

    assert digest["submissions_total"] == submissions
    digest_mails = {item["mail_id"] for item in digest["needs_a_person"]}
    digest_letters = {item["reply_id"] for item in digest["troubled_replies"]}
    assert cli_mails == desk_mails == digest_mails
    assert cli_letters == desk_letters == digest_letters
    assert needing == len(cli_mails) + len(cli_letters)
    # Every reason is there: each trouble mail, the bounce of our reply, three letters.
    reasons = {code for item in digest["needs_a_person"] for code in item["codes"]}
    assert reasons == set(NEEDS_A_PERSON)
    assert {item["state"] for item in digest["troubled_replies"]} == {
        "failed",
        "uncertain",
        "bounced",
    }


def test_the_digest_says_status_and_trouble_in_the_desks_words(desk: RunningDesk) -> None:
    with desk.app.db.transaction() as session:
        context = digest_context(session, desk.app.call, since=None, now=july(31, 12))
    _, body = desk.app.renderer.render("digest", context)
    assert "需要更正" in body
    assert "待修改" not in body
    assert "结构过于复杂" in body
    assert "too complex to open" in body
    assert "未能判定" in body
    assert "发件人认证失败" in body


def test_a_number_alone_matches_a_reference_not_every_row(
    desk: RunningDesk, signed_in: Client
) -> None:
    page = signed_in.get("/log?q=2").text
    assert re.findall(r'data-reference="([^"]+)"', page) == ["ANSO2021-0002"]


@pytest.mark.parametrize(
    ("query", "pi"),
    [
        ("植物所", "张喆"),  # an abbreviation from rules/cas_institutes.txt
        ("中科院植物所", "张喆"),
        ("Institute of Botany", "张喆"),
        ("zhangzhe@ibcas", "张喆"),  # the sender's address
        ("lina@IM.ac.cn", "李娜"),
    ],
)
def test_search_finds_aliases_senders_and_titles(
    desk: RunningDesk, signed_in: Client, query: str, pi: str
) -> None:
    page = signed_in.get(f"/log?q={quote(query)}").text
    rows = re.findall(r"<tr data-reference=.*?</tr>", page, re.S)
    assert rows, query
    assert all(pi in row for row in rows), query


def test_search_finds_a_title(desk: RunningDesk, signed_in: Client) -> None:
    with desk.app.db.transaction() as session:
        reference, form = session.execute(
            select(Submission.reference, Version.form)
            .join(Version, Version.submission_id == Submission.id)
            .where(Version.form.is_not(None), Version.superseded.is_(False))
            .order_by(Submission.seq)
        ).first()  # type: ignore[misc]
    words = form["title"][2:8]
    page = signed_in.get(f"/log?q={quote(words)}").text
    assert reference in re.findall(r'data-reference="([^"]+)"', page)


def test_the_export_keeps_a_lone_dash_and_guards_formulas(desk: RunningDesk) -> None:
    assert [spreadsheet_safe(v) for v in ("-", "+", "=", "")] == ["-", "+", "=", ""]
    assert spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert spreadsheet_safe("-2+3") == "'-2+3"
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("\tx") == "'\tx"
    with desk.app.db.transaction() as session:
        rows = log_rows(session, desk.app.call, LogQuery())
    # What an applicant may write as a name or a title: a dash for "none", or a formula.
    rows.append(replace(rows[0], reference="ANSO2021-9999", pi="-", facts=Facts(title="=1+2")))
    table = export_rows(rows, desk.app.call, lambda code: code or "", lambda codes: "")
    written = list(csv.reader(io.StringIO(to_csv(table).decode("utf-8-sig"))))
    assert len(written) == 1 + len(rows)
    assert written[-1][2:4] == ["-", "'=1+2"]
    assert all(cell != "'-" for row in written for cell in row)


def test_the_cli_and_the_desk_export_the_same_rows(
    desk: RunningDesk, signed_in: Client, tmp_path: Path
) -> None:
    cli(desk, "export", str(tmp_path / "log.csv"))
    from_cli = (tmp_path / "log.csv").read_text(encoding="utf-8-sig")
    from_desk = signed_in.get("/log/export.csv").body.decode("utf-8-sig")
    assert from_cli.splitlines()[0] == from_desk.splitlines()[0]
    cli_refs = [r[0] for r in csv.reader(io.StringIO(from_cli))][1:]
    desk_refs = [r[0] for r in csv.reader(io.StringIO(from_desk))][1:]
    assert cli_refs == desk_refs
    assert len(cli_refs) >= 5


def test_the_overview_shows_recent_activity(desk: RunningDesk, signed_in: Client) -> None:
    overview = signed_in.get("/").text
    activity = overview[overview.index('id="activity"') :]
    assert "收到邮件" in activity
    assert "回复" in activity
    newest = max(re.findall(r"(2021-07-\d\d \d\d:\d\d)", activity))
    assert newest.startswith("2021-07-29") or newest.startswith("2021-07-3")


def test_the_log_loads_one_page_of_submissions_not_all(desk: RunningDesk) -> None:
    """Filtering, sorting and paging happen in SQL: a page loads only its own rows."""
    loaded: list[object] = []

    def count(target: object, context: object) -> None:
        loaded.append(target)

    event.listen(Submission, "load", count)
    try:
        with desk.app.db.transaction() as session:
            total = len(session.scalars(select(Submission.id)).all())
        signed = Client(desk.url)
        signed.login()
        loaded.clear()
        page = signed.get("/log?sort=received_at&dir=desc&status=accepted").text
    finally:
        event.remove(Submission, "load", count)
    shown = re.findall(r'data-reference="([^"]+)"', page)
    assert shown
    assert len(loaded) == len(shown) < total


def test_cli_show_and_the_desk_show_the_same_submission_in_full(
    desk: RunningDesk, signed_in: Client
) -> None:
    shown = cli(desk, "show", "ANSO2021-0002")
    page = signed_in.get("/submissions/ANSO2021-0002").text
    cli_files = set(re.findall(r"B  ([0-9a-f]{64})$", shown, re.M))
    desk_files = set(re.findall(r"/files/([0-9a-f]{64})\?", page))
    assert cli_files
    assert cli_files <= desk_files  # the desk adds each mail's raw .eml
    versions = re.findall(r"版本 Version (\d+) \(", shown)
    assert versions == ["1", "2"]
    for number in versions:
        assert f'版本 <span class="en">Version</span> {number} ·' in page
