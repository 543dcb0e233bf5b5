"""A fetched batch is recorded in one transaction: one commit, few statements a mail.

The figures are counts (statements and commits the database was sent), not
times, so they hold on a busy machine: a batch of 25 mixed mails (accepted,
corrections and resubmissions, duplicates, the same bytes twice, late mail,
a bounce) commits once and sends at most STATEMENTS_PER_MAIL statements a
mail, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select

from mailbot.app import App
from mailbot.intake.poll import PollReport, poll
from mailbot.sources.maildir import deliver
from mailbot.store.models import Mail, Reply
from tests.daemon_support import BEIJING, july, proposal, settings_values, with_trace
from tests.fixtures import AppFactory
from tests.mailfactory import build_mail

BATCH = 25
MAILBOX = "anso2021program@anso.org.cn"


@dataclass
class Counts:
    """What the engine was sent: every statement, and the commits among them."""

    statements: int = 0
    commits: int = 0


@contextmanager
def counting(engine: Engine) -> Iterator[Counts]:
    counts = Counts()

    def statement(*_args: Any) -> None:
        counts.statements += 1

    def commit(*_args: Any) -> None:
        counts.commits += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def mixed_batch(maildir: Path) -> None:
    """25 mails, oldest first: what a day of the call brings, in one fetch batch."""
    mails: list[tuple[bytes, datetime]] = []
    clients = ["outlook", "foxmail", "coremail", "gmail", "qqmail", "applemail"]
    for n in range(10):  # accepted
        mails.append((proposal(clients[n % 6], f"中国科学院第{n}研究所", f"李{n}"), july(20, 9, n)))
    for n in range(4):  # misnamed files: a correction is asked for
        raw = proposal(clients[n % 6], f"中国科学院第{n + 10}研究所", f"王{n}", files="misnamed")
        mails.append((raw, july(20, 10, n)))
    for n in range(3):  # the corrections of three of them: resubmissions
        mails.append(
            (proposal(clients[n], f"中国科学院第{n + 10}研究所", f"王{n}"), july(20, 11, n))
        )
    mails.append((proposal("gmail", "中国科学院第20研究所", "赵一", files="no_pdf"), july(20, 12)))
    mails.append((mails[0][0], july(20, 13)))  # the very same bytes again
    mails.append((mails[1][0], july(20, 13, 1)))
    mails.append((with_trace(mails[2][0], MAILBOX, "cc"), july(20, 13, 2)))  # another delivery
    mails.append((with_trace(mails[3][0], MAILBOX, "alias"), july(20, 13, 3)))
    for n in range(2):  # after the deadline
        late = proposal("outlook", f"中国科学院第{n + 30}研究所", f"周{n}")
        mails.append((late, datetime(2021, 8, 2, 9, n, tzinfo=BEIJING)))
    bounce = build_mail(
        "raw_utf8",
        subject="Undelivered Mail Returned to Sender",
        sender=("Mail Delivery System", "MAILER-DAEMON@mx.ibcas.ac.cn"),
    )
    mails.append((bounce, july(20, 14)))
    assert len(mails) == BATCH
    for raw, when in mails:
        deliver(maildir, raw, when)


def polled(app: App) -> tuple[PollReport, Counts]:
    mailbox = app.open_mailbox()
    try:
        with counting(app.db.engine) as counts:
            report = poll(app, mailbox)
    finally:
        mailbox.close()
    return report, counts


def test_a_batch_of_mixed_mail_commits_once_with_few_statements_a_mail(
    make_app: AppFactory, db_url: str, tmp_path: Path
) -> None:
    app = make_app(settings_values(tmp_path, db_url))
    mixed_batch(tmp_path / "Maildir")
    report, counts = polled(app)
    print(
        f"\n{db_url.partition(':')[0]}: {counts.statements / BATCH:.1f} statements and "
        f"{counts.commits / BATCH:.2f} commits a mail"
    )
    print(dict(report.statuses))
    assert report.fault is None
    assert (report.new, report.known, report.failed, report.duplicates) == (23, 2, 0, 2)
    with app.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Mail)) == 23
        assert session.scalar(select(func.count()).select_from(Reply)) == 20
