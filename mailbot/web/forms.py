"""The desk's forms: decide, withdraw, note, resend, write; each one a line in the audit trail."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, g, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response as BaseResponse

from mailbot.store.models import Mail, Submission
from mailbot.web import actions
from mailbot.web.actions import ActionError
from mailbot.web.app import Desk
from mailbot.web.auth import Actor
from mailbot.web.pages import Pages

# A submission act: (session, submission, actor, form reason) -> the notice to show.
Act = Callable[[Session, Submission, Actor, str], str]


class Forms:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.app = desk.app
        self.pages = Pages(desk)  # a refused form is shown again with its error

    def register(self, flask: Flask) -> None:
        acts: dict[str, Act] = {
            "accept": self.accept,
            "withdraw": self.withdraw,
            "note": self.note,
            "resend": self.resend,
        }
        for name, act in acts.items():
            flask.add_url_rule(
                f"/submissions/<reference>/{name}",
                name,
                self._submission_form(act),
                methods=["POST"],
            )
        flask.add_url_rule("/submissions/<reference>/write", "send", self.send, methods=["POST"])
        flask.add_url_rule(
            "/mails/<id:mail_id>/note", "mail_note", self.mail_note, methods=["POST"]
        )

    def _submission_form(self, act: Act) -> Callable[[str], BaseResponse | tuple[str, int]]:
        def view(reference: str) -> BaseResponse | tuple[str, int]:
            reason = request.form.get("reason", "")
            try:
                with self.app.db.transaction() as session:
                    submission = self._submission(session, reference)
                    notice = act(session, submission, g.actor, reason)
            except ActionError as exc:
                return self.pages.submission(reference, error=str(exc), status=400)
            return redirect(
                url_for("submission", reference=submission.reference, done=notice, _anchor="audit"),
                303,
            )

        return view

    def _submission(self, session: Session, reference: str) -> Submission:
        submission = session.scalar(
            select(Submission).where(
                Submission.call_id == self.app.call.id,
                Submission.reference == reference.strip().upper(),
            )
        )
        if submission is None:
            abort(404)
        return submission

    def accept(self, session: Session, submission: Submission, actor: Actor, reason: str) -> str:
        actions.accept_by_decision(session, submission, actor, reason, self.desk.now())
        return "accepted"

    def withdraw(self, session: Session, submission: Submission, actor: Actor, reason: str) -> str:
        actions.withdraw(session, submission, actor, reason, self.desk.now())
        return "withdrawn"

    def note(self, session: Session, submission: Submission, actor: Actor, reason: str) -> str:
        actions.add_note(session, actor, reason, self.desk.now(), submission=submission)
        return "noted"

    def resend(self, session: Session, submission: Submission, actor: Actor, reason: str) -> str:
        actions.resend_last_reply(session, self.app, submission, actor, reason, self.desk.now())
        return "resent"

    def send(self, reference: str) -> BaseResponse | tuple[str, int]:
        """Queue the letter as the person edited it."""
        try:
            with self.app.db.transaction() as session:
                submission = self._submission(session, reference)
                actions.write_to_applicant(
                    session,
                    self.app,
                    self.desk.letters,
                    submission,
                    g.actor,
                    template=request.form.get("template", ""),
                    subject=request.form.get("subject", ""),
                    body=request.form.get("body", ""),
                    reason=request.form.get("reason", ""),
                    now=self.desk.now(),
                )
        except ActionError as exc:
            return self.pages.write(reference, error=str(exc), status=400)
        return redirect(
            url_for("submission", reference=submission.reference, done="written", _anchor="audit"),
            303,
        )

    def mail_note(self, mail_id: int) -> BaseResponse | tuple[str, int]:
        try:
            with self.app.db.transaction() as session:
                mail = session.get(Mail, mail_id)
                if mail is None or mail.call_id != self.app.call.id:
                    abort(404)
                actions.add_note(
                    session, g.actor, request.form.get("reason", ""), self.desk.now(), mail=mail
                )
        except ActionError as exc:
            return self.pages.mail(mail_id, error=str(exc), status=400)
        return redirect(url_for("mail", mail_id=mail_id, done="noted", _anchor="audit"), 303)
