"""The desk's pages to read: overview, intake log and its export, a submission, a mail, a file."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable

from flask import Flask, Response, abort, g, render_template, request
from werkzeug.wrappers.response import Response as BaseResponse
from werkzeug.wsgi import wrap_file

from mailbot.domain import SubmissionStatus
from mailbot.errors import MailbotError
from mailbot.ledger.attention import UNMATCHED_KINDS, mail_kind, unmatched_mails
from mailbot.ledger.export import export_rows, to_csv, to_xlsx
from mailbot.ledger.log import (
    LogQuery,
    focus_areas_in_use,
    log_page,
    log_rows,
    neighbours,
    statuses_in_use,
)
from mailbot.ledger.packet import PacketError, write_packet
from mailbot.ledger.problem_words import problem_words
from mailbot.mail.parsing import parse_message
from mailbot.store.models import Mail
from mailbot.web import actions, charts, drafts
from mailbot.web.actions import (
    ActionError,
    act_words,
    allowed_acts,
    draft_letter,
    refusal,
    resendable,
    status_words,
)
from mailbot.web.desk import Desk
from mailbot.web.detail import bounced_replies, mail_events, submission_page
from mailbot.web.edge import query_id
from mailbot.web.files import blob_name, content_disposition, content_type
from mailbot.web.labels import NOTICES, REFUSALS, STATUSES
from mailbot.web.letters import Letters, recipient
from mailbot.web.overview import overview

log = logging.getLogger(__name__)

# The status a confirmed decision sets, for its confirmation page to show.
CONFIRM_STATUS = {
    actions.ACCEPT_ACT: SubmissionStatus.ACCEPTED_BY_DECISION,
    actions.WITHDRAW_ACT: SubmissionStatus.WITHDRAWN,
}

MAX_TEXT = 100_000  # characters of a mail's text shown on its page
# Columns of the log a reader may add; status, receipt time, reference, institution,
# PI and version are always shown.
OPTIONAL_COLUMNS: dict[str, tuple[str, str]] = {
    "title": ("项目名称", "Title"),
    "focus_area": ("资助领域", "Focus area"),
    "budget": ("经费（万元）", "Funding (10k CNY)"),
    "partners": ("合作单位 / 外方", "Partners / foreign"),
    "sender": ("发件人", "Sender"),
}


class Pages:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.app = desk.app
        self.letters = Letters(desk.letters)

    def register(self, flask: Flask) -> None:
        flask.add_url_rule("/", "overview", self.overview)
        flask.add_url_rule("/log", "log", self.log)
        flask.add_url_rule("/log/export.<any(xlsx, csv):suffix>", "export", self.export)
        flask.add_url_rule("/packet.zip", "packet", self.packet, methods=["POST"])
        flask.add_url_rule("/submissions/<reference>", "submission", self.submission)
        flask.add_url_rule("/submissions/<reference>/write", "write", self.write)
        flask.add_url_rule("/mails", "mails", self.mails)
        flask.add_url_rule("/mails/<id:mail_id>", "mail", self.mail)
        flask.add_url_rule("/files/<sha256>", "file", self.file)

    def overview(self) -> str:
        with self.app.db.transaction() as session:
            facts = overview(session, self.app.call, self.desk.now())
            return render_template(
                "overview.html",
                facts=facts,
                chart=charts.per_day(facts.per_day),
                page="overview",
            )

    def log(self) -> str:
        query = LogQuery.from_args(request.args, tuple(OPTIONAL_COLUMNS))
        with self.app.db.transaction() as session:
            found = log_page(session, self.app.call, query)
            areas = focus_areas_in_use(self.app.call)
            in_use = statuses_in_use(session, self.app.call)
        # The statuses a submission can have, and any other the database holds.
        statuses = [key for key in STATUSES if key != "ignored"]
        statuses += sorted(set(in_use) - set(statuses))
        return render_template(
            "log.html",
            found=found,
            rows=found.rows,
            total=found.total,
            query=found.query,
            areas=areas,
            statuses=statuses,
            optional=OPTIONAL_COLUMNS,
            page="log",
        )

    def export(self, suffix: str) -> Response:
        query = LogQuery.from_args(request.args)
        with self.app.db.transaction() as session:
            rows = log_rows(session, self.app.call, query)
        table = export_rows(rows, self.app.call, self.desk.focus_area_text, problem_words)
        data = to_csv(table) if suffix == "csv" else to_xlsx(table)
        stamp = self.app.call.local(self.desk.now()).strftime("%Y%m%d-%H%M")
        name = f"{self.app.call.id}-intake-log-{stamp}.{suffix}"
        kind = (
            "text/csv; charset=utf-8"
            if suffix == "csv"
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        return Response(
            data, mimetype=kind, headers={"Content-Disposition": content_disposition(name)}
        )

    def packet(self) -> Response:
        """The review packet (editors: the guard refuses a viewer's POST), made in a
        temporary file and streamed from it, never whole in memory."""
        # Not a with block: the server closes it when the response has been sent.
        spool = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            with self.app.db.transaction() as session:
                write_packet(session, self.app.call, self.app.blobs, spool)
        except PacketError as exc:  # a missing or damaged blob: said in the log, in one line
            spool.close()
            log.error("review packet: %s", exc)
            abort(500)
        except BaseException:
            spool.close()
            raise
        size = spool.tell()
        spool.seek(0)
        stamp = self.app.call.local(self.desk.now()).strftime("%Y%m%d-%H%M")
        name = f"{self.app.call.id}-review-packet-{stamp}.zip"
        return Response(
            wrap_file(request.environ, spool),
            mimetype="application/zip",
            direct_passthrough=True,
            headers={"Content-Disposition": content_disposition(name), "Content-Length": str(size)},
        )

    def submission(self, reference: str) -> str:
        with self.app.db.transaction() as session:
            page = submission_page(session, self.app.call, self.app.blobs, reference)
            if page is None:
                abort(404)
            s = page.submission
            to = recipient(s)
            again = resendable(session, self.letters, s)
            query = LogQuery.from_args(request.args, tuple(OPTIONAL_COLUMNS))
            around = neighbours(session, self.app.call, query, s.reference)
            return render_template(
                "submission.html",
                view=page,
                query=query,
                around=around,
                letters=self._letter_choices(),
                recipient=to,
                acts=allowed_acts(s, again, to),
                again=again,
                suggested=self.letters.for_status(s.status) if again is None else None,
                preferred=self.letters.for_status(s.status),
                title_of=self.letters.title,
                notice=NOTICES.get(request.args.get("done", "")),
                error=self._refusal(actions.NOTE_ACT, s.status),
                page="log",
            )

    def confirm_view(self, act: str) -> Callable[[str], str]:
        """A decision's or a resend's confirmation page: what will happen, the reason, a button."""

        def view(reference: str) -> str:
            with self.app.db.transaction() as session:
                page = submission_page(session, self.app.call, self.app.blobs, reference)
                if page is None:
                    abort(404)
                s = page.submission
                again = resendable(session, self.letters, s)
                possible = act in allowed_acts(s, again, recipient(s))
                error = self._refusal(act, s.status)
                if not possible and error is None:
                    code = "no_letter" if act == actions.RESEND_ACT else "not_now"
                    error = refusal(code, **act_words(act), **status_words(s.status))
                return render_template(
                    "confirm.html",
                    submission=s,
                    act=act,
                    possible=possible,
                    new_status=CONFIRM_STATUS.get(act),
                    again=again,
                    title_of=self.letters.title,
                    error=error,
                    page="log",
                )

        view.__name__ = f"confirm_{act}"
        return view

    def _refusal(self, act: str, status: str) -> tuple[str, str] | None:
        """The refusal a redirect names (?refused=CODE), in words; unknown codes say nothing."""
        code = request.args.get("refused", "")
        if code not in REFUSALS:
            return None
        return refusal(code, **act_words(act), **status_words(status))

    def _letter_choices(self) -> list[tuple[str, tuple[str, str]]]:
        return [(name, self.letters.title(name)) for name in self.letters.names()]

    def write(self, reference: str) -> tuple[str, int] | str:
        """A letter to the applicant drafted from a template, for a person to edit and send.

        A letter this person left unsent here (refused, or sent after the
        session expired) is shown again instead, with a way to start afresh.
        """
        with self.app.db.transaction() as session:
            page = submission_page(session, self.app.call, self.app.blobs, reference)
            if page is None:
                abort(404)
            s = page.submission
            draft = drafts.open_draft(session, g.actor.user_id, s, self.desk.now())
            left = drafts.kept(session, g.actor.user_id, s)
            name = left.template if left is not None else request.args.get("template", "")
            try:
                subject, body = draft_letter(self.app, self.letters, s, name)
            except ActionError:
                abort(404)
            except MailbotError as exc:  # a template that does not render: say which
                return render_template("error.html", code=500, error=exc), 500
            if left is not None:
                subject, body = left.subject, left.body
            return render_template(
                "write.html",
                submission=s,
                template=name,
                template_title=self.letters.title(name),
                subject=subject,
                body=body,
                reason=left.reason if left is not None else "",
                restored=left.kept_at if left is not None else None,
                draft=draft.token,
                recipient=recipient(s),
                error=self._refusal(actions.WRITE_ACT, s.status),
                page="log",
            )

    def mails(self) -> str:
        kind = request.args.get("kind", "")
        kind = kind if kind in UNMATCHED_KINDS else ""
        handled = request.args.get("show") == "all"  # open mail only, unless asked
        with self.app.db.transaction() as session:
            mails = unmatched_mails(session, self.app.call, kind, handled=handled)
            return render_template(
                "mails.html",
                mails=mails,
                kind=kind,
                show="all" if handled else "",
                kind_of=mail_kind,
                page="mails",
            )

    def mail(self, mail_id: int, error: str = "", status: int = 200) -> tuple[str, int]:
        refused = self._refusal(actions.NOTE_ACT, "")
        error = error or (" ".join(refused) if refused else "")
        with self.app.db.transaction() as session:
            mail = session.get(Mail, mail_id)
            if mail is None or mail.call_id != self.app.call.id:
                abort(404)
            return (
                render_template(
                    "mail.html",
                    mail=mail,
                    kind=mail_kind(mail),
                    bounced=bounced_replies(session, self.app.blobs, mail),
                    body=self._text(mail),
                    events=mail_events(session, mail),
                    notice=NOTICES.get(request.args.get("done", "")),
                    error=error,
                    page="mails",
                ),
                status,
            )

    def _text(self, mail: Mail) -> str:
        """The mail's text as the parser reads it, for a person to read what came."""
        if not self.app.blobs.exists(mail.raw_sha256):
            return ""
        return parse_message(self.app.blobs.get(mail.raw_sha256)).text[:MAX_TEXT]

    def file(self, sha256: str) -> BaseResponse:
        """A stored file by its sha256 alone; its name comes from the database, not the request."""
        with self.app.db.transaction() as session:
            name = blob_name(
                session,
                sha256,
                version_id=query_id("version"),
                mail_id=query_id("mail"),
            )
        if name is None or not self.app.blobs.exists(sha256):
            abort(404)
        response = Response(self.app.blobs.get(sha256), mimetype=content_type(name))
        response.headers["Content-Disposition"] = content_disposition(name)
        # Even opened in place, a file from an applicant runs nothing.
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
        return response
