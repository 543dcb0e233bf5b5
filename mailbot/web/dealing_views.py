"""The desk's pages and forms for other mail and the outbox.

Every form is a POST carrying the session's CSRF token (checked by the
guard) and a ticked "confirm" box; a done act redirects (303) to a page that
says what was done, a refused one shows the page again with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, g, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response as BaseResponse

from mailbot.errors import MailbotError
from mailbot.store.models import Mail
from mailbot.web import dealing, outbox_desk
from mailbot.web.actions import Acting, ActionError, WrittenLetter
from mailbot.web.desk import Desk
from mailbot.web.labels import NOTICES, OUTBOX_GROUPS
from mailbot.web.pages import Pages

# A mail act: (session, mail) -> the notice to show.
MailAct = Callable[[Session, Mail], str]
View = Callable[..., BaseResponse | tuple[str, int]]


class Dealing:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.app = desk.app
        self.pages = Pages(desk)
        self.answers = dealing.answer_renderer(self.app.settings.templates_path() / "web")

    def register(self, flask: Flask) -> None:
        flask.jinja_env.globals["answer_names"] = lambda: dealing.answer_names(self.answers)
        flask.add_url_rule("/outbox", "outbox", self.outbox)
        flask.add_url_rule(
            "/outbox/<id:reply_id>/resend", "outbox_resend", self.resend, methods=["POST"]
        )
        flask.add_url_rule(
            "/outbox/<id:reply_id>/dealt", "outbox_dealt", self.dealt, methods=["POST"]
        )
        acts: dict[str, MailAct] = {
            "attach": self.attach,
            "handled": self.handled,
            "reopen": self.reopen,
        }
        for name, act in acts.items():
            flask.add_url_rule(
                f"/mails/<id:mail_id>/{name}",
                f"mail_{name}",
                self._mail_form(act),
                methods=["POST"],
            )
        flask.add_url_rule("/mails/<id:mail_id>/answer", "mail_answer", self.draft)
        flask.add_url_rule(
            "/mails/<id:mail_id>/answer", "mail_answer_send", self.send, methods=["POST"]
        )

    def _acting(self) -> Acting:
        """The person signed in, now, with the reason the form gives."""
        return Acting(g.actor, request.form.get("reason", ""), self.desk.now())

    # -- other mail -------------------------------------------------------------

    def _mail_form(self, act: MailAct) -> View:
        def view(mail_id: int) -> BaseResponse | tuple[str, int]:
            try:
                dealing.confirmed(request.form.get("confirm", ""))
                with self.app.db.transaction() as session:
                    mail = self._mail(session, mail_id)
                    notice = act(session, mail)
            except ActionError as exc:
                return self.pages.mail(mail_id, error=str(exc), status=400)
            return redirect(url_for("mail", mail_id=mail_id, done=notice, _anchor="audit"), 303)

        return view

    def _mail(self, session: Session, mail_id: int) -> Mail:
        mail = session.get(Mail, mail_id) if 0 < mail_id <= dealing.MAX_ID else None
        if mail is None or mail.call_id != self.app.call.id:
            abort(404)
        return mail

    def _open_mail(self, session: Session, mail_id: int) -> Mail:
        try:
            return dealing.open_mail(session, self.app, mail_id)
        except LookupError:
            abort(404)

    def attach(self, session: Session, mail: Mail) -> str:
        mail = self._open_mail(session, mail.id)
        to = dealing.AttachTo(
            request.form.get("reference", ""),
            as_version=request.form.get("as") == "version",
            tell=request.form.get("tell") == "yes",
        )
        dealing.attach(session, self.app, mail, to, self._acting())
        return "attached"

    def handled(self, session: Session, mail: Mail) -> str:
        mail = self._open_mail(session, mail.id)
        dealing.mark_handled(session, mail, self._acting())
        return "handled"

    def reopen(self, session: Session, mail: Mail) -> str:
        dealing.reopen(session, mail, self._acting())
        return "reopened"

    def draft(
        self, mail_id: int, error: str = "", status: int = 200
    ) -> BaseResponse | tuple[str, int]:
        """A letter to the sender drafted from a template, for a person to edit and send."""
        name = request.values.get("template", "")
        with self.app.db.transaction() as session:
            try:
                mail = self._open_mail(session, mail_id)
            except ActionError as exc:  # attached to a submission: write from there
                taken = session.get(Mail, mail_id)
                if request.method == "GET" and taken is not None and taken.submission:
                    reference = taken.submission.reference
                    return redirect(url_for("write", reference=reference), 303)
                return self.pages.mail(mail_id, error=str(exc), status=400)
            try:
                subject, body = dealing.draft_answer(self.app, self.answers, mail, name)
            except ActionError:
                abort(404)
            except MailbotError as exc:  # a template that does not render: say which
                return render_template("error.html", code=500, error=exc), 500
            if request.method == "POST":  # shown again after a refused send: keep their text
                subject = request.form.get("subject", subject)
                body = request.form.get("body", body)
            return (
                render_template(
                    "answer.html",
                    mail=mail,
                    template=name,
                    subject=subject,
                    body=body,
                    recipient=mail.reply_to or mail.sender,
                    reason=request.form.get("reason", ""),
                    error=error,
                    page="mails",
                ),
                status,
            )

    def send(self, mail_id: int) -> BaseResponse | tuple[str, int]:
        try:
            dealing.confirmed(request.form.get("confirm", ""))
            with self.app.db.transaction() as session:
                mail = self._open_mail(session, mail_id)
                letter = WrittenLetter(
                    request.form.get("template", ""),
                    request.form.get("subject", ""),
                    request.form.get("body", ""),
                )
                dealing.answer(session, self.app, self.answers, mail, self._acting(), letter)
        except ActionError as exc:
            return self.draft(mail_id, error=str(exc), status=400)
        return redirect(url_for("mail", mail_id=mail_id, done="answered", _anchor="audit"), 303)

    # -- the outbox -------------------------------------------------------------

    def outbox(self, error: str = "", status: int = 200) -> tuple[str, int]:
        group = request.args.get("state", "")
        group = group if group in outbox_desk.STATE_GROUPS else ""
        number = request.args.get("page", 1, type=int) or 1
        with self.app.db.transaction() as session:
            view = outbox_desk.outbox_page(session, self.app.call.id, group, number)
            return (
                render_template(
                    "outbox.html",
                    view=view,
                    group=group,
                    groups=OUTBOX_GROUPS,
                    resendable=outbox_desk.RESENDABLE,
                    troubled=outbox_desk.TROUBLED,
                    notice=NOTICES.get(request.args.get("done", "")),
                    error=error,
                    page="outbox",
                ),
                status,
            )

    def _outbox_form(
        self, reply_id: int, act: Callable[[Session], object], done: str
    ) -> BaseResponse | tuple[str, int]:
        try:
            dealing.confirmed(request.form.get("confirm", ""))
            with self.app.db.transaction() as session:
                act(session)
        except LookupError:
            abort(404)
        except ActionError as exc:
            return self.outbox(error=str(exc), status=400)
        state = request.form.get("state", "")
        back = state if state in outbox_desk.STATE_GROUPS else None
        return redirect(url_for("outbox", state=back, done=done, _anchor=f"r{reply_id}"), 303)

    def resend(self, reply_id: int) -> BaseResponse | tuple[str, int]:
        acting = self._acting()

        def act(session: Session) -> object:
            return outbox_desk.resend(session, self.app, reply_id, acting)

        return self._outbox_form(reply_id, act, "outbox_resent")

    def dealt(self, reply_id: int) -> BaseResponse | tuple[str, int]:
        acting = self._acting()

        def act(session: Session) -> object:
            outbox_desk.mark_dealt_with(session, self.app, reply_id, acting)
            return None

        return self._outbox_form(reply_id, act, "dealt")
