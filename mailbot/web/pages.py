"""The desk's pages to read: overview, intake log and its export, a submission, a mail, a file."""

from __future__ import annotations

from flask import Flask, Response, abort, render_template, request
from werkzeug.wrappers.response import Response as BaseResponse

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
from mailbot.parsing import parse_message
from mailbot.problem_words import problem_words
from mailbot.store.models import Mail
from mailbot.web import charts
from mailbot.web.actions import ActionError, draft_letter, letter_names, recipient
from mailbot.web.app import Desk
from mailbot.web.desk import overview
from mailbot.web.detail import bounced_replies, mail_events, submission_page
from mailbot.web.files import blob_name, content_disposition, content_type
from mailbot.web.labels import NOTICES, STATUSES

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

    def register(self, flask: Flask) -> None:
        flask.add_url_rule("/", "overview", self.overview)
        flask.add_url_rule("/log", "log", self.log)
        flask.add_url_rule("/log/export.<any(xlsx, csv):suffix>", "export", self.export)
        flask.add_url_rule("/submissions/<reference>", "submission", self.submission)
        flask.add_url_rule("/submissions/<reference>/write", "write", self.write)
        flask.add_url_rule("/mails", "mails", self.mails)
        flask.add_url_rule("/mails/<int:mail_id>", "mail", self.mail)
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

    def submission(self, reference: str, error: str = "", status: int = 200) -> tuple[str, int]:
        with self.app.db.transaction() as session:
            page = submission_page(session, self.app.call, self.app.blobs, reference)
            if page is None:
                abort(404)
            query = LogQuery.from_args(request.args, tuple(OPTIONAL_COLUMNS))
            around = neighbours(session, self.app.call, query, page.submission.reference)
            return (
                render_template(
                    "submission.html",
                    view=page,
                    query=query,
                    around=around,
                    letters=letter_names(self.desk.letters),
                    recipient=recipient(page.submission),
                    notice=NOTICES.get(request.args.get("done", "")),
                    error=error,
                    page="log",
                ),
                status,
            )

    def write(self, reference: str, error: str = "", status: int = 200) -> tuple[str, int]:
        """A letter to the applicant drafted from a template, for a person to edit and send."""
        name = request.values.get("template", "")
        with self.app.db.transaction() as session:
            page = submission_page(session, self.app.call, self.app.blobs, reference)
            if page is None:
                abort(404)
            try:
                subject, body = draft_letter(self.app, self.desk.letters, page.submission, name)
            except ActionError:
                abort(404)
            except MailbotError as exc:  # a template that does not render: say which
                return render_template("error.html", code=500, error=exc), 500
            if request.method == "POST":  # shown again after a refused send: keep their text
                subject = request.form.get("subject", subject)
                body = request.form.get("body", body)
            return (
                render_template(
                    "write.html",
                    submission=page.submission,
                    template=name,
                    subject=subject,
                    body=body,
                    recipient=recipient(page.submission),
                    reason=request.form.get("reason", ""),
                    error=error,
                    page="log",
                ),
                status,
            )

    def mails(self) -> str:
        kind = request.args.get("kind", "")
        kind = kind if kind in UNMATCHED_KINDS else ""
        with self.app.db.transaction() as session:
            mails = unmatched_mails(session, self.app.call, kind)
            return render_template(
                "mails.html", mails=mails, kind=kind, kind_of=mail_kind, page="mails"
            )

    def mail(self, mail_id: int, error: str = "", status: int = 200) -> tuple[str, int]:
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
                version_id=request.args.get("version", type=int),
                mail_id=request.args.get("mail", type=int),
            )
        if name is None or not self.app.blobs.exists(sha256):
            abort(404)
        response = Response(self.app.blobs.get(sha256), mimetype=content_type(name))
        response.headers["Content-Disposition"] = content_disposition(name)
        # Even opened in place, a file from an applicant runs nothing.
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
        return response
