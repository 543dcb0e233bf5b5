"""Judge every stored mail again under the current rules, and rebuild the versions.

The call's mails are replayed in receipt order inside one transaction, and what
the replay built is compared with what was stored: per mail its status and
problems, per submission its status and versions. What did not change stays as
it was, row ids and times included, so a reprocess under unchanged rules writes
nothing. ``dry_run`` reports the same changes and rolls the whole replay back.

A mail a person attached to a submission at the desk stays attached: as a
version it is judged as that submission's mail (mailbot.intake.attaching), as a
supporting mail it stays tied to it.

A changed verdict is told to the applicant only when asked (``reply``); until
then the mail keeps ``reply_due``, so a later ``reprocess --reply`` still tells
it, once. A submission keeps a person's decision (accepted by decision,
withdrawn); one with only late mails is ``late``, and one no mail belongs to any
more is ``ignored``: no status outside the documented ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, inspect, select
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.domain import DECIDED
from mailbot.intake.attaching import VERSION, judge_as_submission
from mailbot.intake.record import queue_answer
from mailbot.intake.submissions import judge_again, record
from mailbot.intake.thread import answered_submission, judge_in_thread
from mailbot.judge.checks import verdict_for
from mailbot.judge.verdict import Status, Verdict
from mailbot.ledger.counting import count
from mailbot.mail.message import Message
from mailbot.mail.parsing import parse_message
from mailbot.store.models import Mail, Submission, Version

VERSION_FIELDS = (
    "number",
    "mail_id",
    "kind",
    "status",
    "problems",
    "files",
    "received_at",
    "superseded",
    "form",
    "pdf_pages",
    "seal",
)


@dataclass
class ReprocessReport:
    """What a reprocess changed (or, in a dry run, would change)."""

    dry_run: bool = False
    reply: bool = False
    total: int = 0
    mails: list[str] = field(default_factory=list)  # one line per changed verdict
    submissions: list[str] = field(default_factory=list)  # one line per changed submission
    replies: int = 0
    untold: int = 0  # changed verdicts no reply has told yet, after this run


@dataclass(frozen=True)
class _Before:
    """The stored state the replay is compared with."""

    mails: dict[int, tuple[str, tuple[str, ...]]]
    submissions: dict[int, tuple[str, int, tuple[tuple[Any, ...], ...]]]
    version_ids: dict[tuple[int, int], int]
    updated_at: dict[int, datetime]
    # Mail a person attached at the desk: mail id -> (submission id, attached_as).
    attached: dict[int, tuple[int, str]]


def reprocess(app: App, *, reply: bool = False, dry_run: bool = False) -> ReprocessReport:
    """Replay every mail of the call in receipt order under the current rules.

    Submissions keep their reference numbers; their versions are rebuilt and
    compared with the stored ones. Replies are queued only with ``reply`` (never
    in a dry run), for each mail whose verdict changed now or at an earlier
    reprocess that did not reply.
    """
    report = ReprocessReport(dry_run=dry_run, reply=reply and not dry_run)
    with app.db.sessions() as session:
        try:
            _replay(app, session, report, reply=reply and not dry_run)
        except BaseException:
            session.rollback()
            raise
        if dry_run:
            session.rollback()
        else:
            session.commit()
    return report


def _replay(app: App, session: Session, report: ReprocessReport, *, reply: bool) -> None:
    submissions = session.scalars(select(Submission).where(Submission.call_id == app.call.id)).all()
    # A duplicate stays what it is: another copy of a mail judged here anyway.
    mails = session.scalars(
        select(Mail)
        .where(Mail.call_id == app.call.id, Mail.duplicate_of_id.is_(None))
        .order_by(Mail.received_at, Mail.id)
    ).all()
    before = _snapshot(mails, submissions)
    session.execute(delete(Version).where(Version.submission_id.in_(list(before.submissions))))
    for mail in mails:
        mail.submission_id = None
    for submission in submissions:
        submission.current_version = 0
    session.flush()
    session.expire_all()
    for mail in mails:
        _judge_again(app, session, mail, before, report, reply=reply)
    session.flush()
    _keep_version_ids(session, app.call.id, before.version_ids)
    _settle_submissions(session, app, before, report)


def _snapshot(mails: Any, submissions: Any) -> _Before:
    return _Before(
        mails={m.id: (m.status, _codes(m.problems)) for m in mails},
        submissions={s.id: _submission_state(s) for s in submissions},
        version_ids={(v.submission_id, v.number): v.id for s in submissions for v in s.versions},
        updated_at={s.id: s.updated_at for s in submissions},
        attached={
            m.id: (m.submission_id, m.attached_as)
            for m in mails
            if m.attached_as and m.submission_id is not None
        },
    )


def _codes(problems: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(p["code"] for p in problems)


def _submission_state(submission: Submission) -> tuple[str, int, tuple[tuple[Any, ...], ...]]:
    versions = tuple(
        tuple(getattr(v, name) for name in VERSION_FIELDS) for v in submission.versions
    )
    return submission.status, submission.current_version, versions


def _judge_again(
    app: App,
    session: Session,
    mail: Mail,
    before: _Before,
    report: ReprocessReport,
    *,
    reply: bool,
) -> None:
    """Judge one mail as the daemon would, tie it to its submission, reply if due."""
    attached = before.attached.get(mail.id)
    message, verdict = _verdict(app, session, mail, attached)
    thread = answered_submission(session, app.call.id, message) if attached is None else None
    if thread is not None:
        message, verdict = judge_in_thread(app, mail, message, verdict, thread)
    judge_again(mail, verdict)
    outcome = record(session, app.call, app.blobs, mail, message, verdict, thread=thread)
    if attached is not None and mail.submission_id is None:
        mail.submission_id = attached[0]  # a person's attachment stands over the replay
    report.total += 1
    old_status, old_codes = before.mails[mail.id]
    # The mail's problems as recorded: what recording added (same_files_as) counts too.
    new_codes = _codes(mail.problems)
    changed = (old_status, old_codes) != (mail.status, new_codes)
    if changed:
        report.mails.append(_mail_line(mail, old_status, old_codes, list(new_codes)))
    # An ignored mail is never answered: nothing is due to it.
    due = (changed or mail.reply_due) and verdict.status is not Status.IGNORED
    if due and reply:
        queued = len(mail.replies)
        queue_answer(app, session, mail, message, outcome)
        session.flush()
        session.refresh(mail)
        report.replies += len(mail.replies) - queued
        due = False
    if mail.reply_due != due:
        mail.reply_due = due
    report.untold += int(due)


def _verdict(
    app: App, session: Session, mail: Mail, attached: tuple[int, str] | None
) -> tuple[Message, Verdict]:
    """The daemon's verdict; for a mail a person attached as a version, as that submission's."""
    if attached is not None and attached[1] == VERSION:
        submission = session.get(Submission, attached[0])
        judged = judge_as_submission(app, mail, submission) if submission else None
        if judged is not None:
            return judged
    message = parse_message(app.blobs.get(mail.raw_sha256), app.call.documents)
    return message, verdict_for(message, app.call, mail.received_at, app.policy)


def _mail_line(mail: Mail, status: str, old: tuple[str, ...], new: list[str]) -> str:
    line = f"mail {mail.id} {mail.sender or '?'} {mail.subject[:50]!r}: {status} -> {mail.status}"
    gone = [c for c in dict.fromkeys(old) if c not in new]
    added = [c for c in dict.fromkeys(new) if c not in old]
    if gone or added:
        line += "; problems " + " ".join([*(f"-{c}" for c in gone), *(f"+{c}" for c in added)])
    return line


def _keep_version_ids(
    session: Session, call_id: str, version_ids: dict[tuple[int, int], int]
) -> None:
    """Give each rebuilt version the row id its stored namesake had (same submission, number).

    Versions are rebuilt as new rows; where a version of that number existed, the
    row goes back under its old id, so what did not change is the very same row.
    Every version of the call is written again, as a new one may hold an old id.
    """
    rows = session.scalars(
        select(Version)
        .join(Submission, Version.submission_id == Submission.id)
        .where(Submission.call_id == call_id)
        .order_by(Version.submission_id, Version.number)
    ).all()
    if all(version_ids.get((v.submission_id, v.number), v.id) == v.id for v in rows):
        return
    columns = [a.key for a in inspect(Version).column_attrs if a.key != "id"]
    values = [{name: getattr(v, name) for name in columns} for v in rows]
    for version in rows:
        session.delete(version)
    session.flush()
    again = [Version(id=version_ids.get((v["submission_id"], v["number"])), **v) for v in values]
    # The old ids first, so a row without one is numbered after them.
    for version in sorted(again, key=lambda v: v.id is None):
        session.add(version)
        session.flush()
    session.expire_all()


def _settle_submissions(
    session: Session, app: App, before: _Before, report: ReprocessReport
) -> None:
    """Give each submission a documented status, keep what did not change, report the rest."""
    tied = set(
        session.scalars(
            select(Mail.submission_id).where(
                Mail.call_id == app.call.id, Mail.submission_id.is_not(None)
            )
        )
    )
    for submission in session.scalars(
        select(Submission).where(Submission.call_id == app.call.id).order_by(Submission.seq)
    ):
        old = before.submissions.get(submission.id)
        if old is not None and old[0] in DECIDED:
            submission.status = old[0]  # a person's decision stands over the replay
        elif submission.current_version == 0:
            # Only late mails (no version), or no mail at all any more.
            submission.status = str(Status.LATE if submission.id in tied else Status.IGNORED)
        new = _submission_state(submission)
        if old == new:
            submission.updated_at = before.updated_at[submission.id]
            continue
        report.submissions.append(_submission_line(submission, old, new))


def _submission_line(
    submission: Submission,
    old: tuple[str, int, tuple[tuple[Any, ...], ...]] | None,
    new: tuple[str, int, tuple[tuple[Any, ...], ...]],
) -> str:
    def versions(state: tuple[str, int, tuple[tuple[Any, ...], ...]]) -> str:
        # (number, mail_id, kind, status, ...): "1 new needs_correction, 2 resubmission accepted"
        return ", ".join(f"{v[0]} {v[2]} {v[3]}" for v in state[2]) or "none"

    if old is None:
        return f"{submission.reference}: new submission, {new[0]}; versions {versions(new)}"
    line = f"{submission.reference}: "
    line += f"status {old[0]} -> {new[0]}" if old[0] != new[0] else f"status {new[0]}"
    if old[2] != new[2]:
        line += f"; versions {versions(old)} -> {versions(new)}"
    return line


def reprocess_summary(report: ReprocessReport) -> list[str]:
    """The lines `mailbot reprocess` prints: the counts, then each change."""
    verb = "would change" if report.dry_run else "changed"
    head = (
        f"{count(report.total, 'mail')} judged again: "
        f"{count(len(report.mails), 'verdict')} {verb}, "
        f"{count(len(report.submissions), 'submission')} {verb}"
    )
    if report.reply:
        head += f", {count(report.replies, 'reply', 'replies')} queued"
    lines = [head + (" (dry run: nothing written)" if report.dry_run else "")]
    lines += [f"  {line}" for line in (*report.mails, *report.submissions)]
    if report.untold:
        told = "would still be untold" if report.dry_run else "not yet told"
        lines.append(
            f"{count(report.untold, 'changed verdict')} {told}: "
            "`mailbot reprocess --reply` queues their replies"
        )
    return lines
