"""The desk's forms: decide, withdraw, resend, note, write; each one a line in the audit trail.

Every form answers with a redirect (Post/Redirect/Get): a refresh never sends
it again. A decision or a resend is asked for on its own confirmation page
(GET) and done only by that page's button; a refusal is shown on the page
the redirect leads to, by its code (labels.REFUSALS), in both languages.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, g, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response as BaseResponse

from mailbot.store.models import Mail, Submission
from mailbot.web import actions, drafts
from mailbot.web.actions import Acting, ActionError, WrittenLetter
from mailbot.web.desk import Desk
from mailbot.web.letters import Letters
from mailbot.web.pages import Pages

# A submission act: (session, submission, who acts when and why) -> the notice to show.
SubmissionAct = Callable[[Session, Submission, Acting], str]

CONFIRMED = "yes"  # the value of the confirmation page's button


class Forms:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.app = desk.app
        self.letters = Letters(desk.letters)
        self.pages = Pages(desk)

    def register(self, flask: Flask) -> None:
        confirmed: dict[str, SubmissionAct] = {
            actions.ACCEPT_ACT: self.accept,
            actions.WITHDRAW_ACT: self.withdraw,
            actions.RESEND_ACT: self.resend,
        }
        for name, act in confirmed.items():
            flask.add_url_rule(
                f"/submissions/<reference>/{name}",
                name,
                self._confirmed_form(name, act),
                methods=["POST"],
            )
            flask.add_url_rule(
                f"/submissions/<reference>/{name}",
                f"confirm_{name}",
                self.pages.confirm_view(name),
                methods=["GET"],
            )
        flask.add_url_rule("/submissions/<reference>/note", "note", self.note, methods=["POST"])
        flask.add_url_rule("/submissions/<reference>/write", "send", self.send, methods=["POST"])
        flask.add_url_rule(
            "/submissions/<reference>/write/discard", "discard", self.discard, methods=["POST"]
        )
        flask.add_url_rule(
            "/mails/<id:mail_id>/note", "mail_note", self.mail_note, methods=["POST"]
        )

    def _confirmed_form(self, name: str, act: SubmissionAct) -> Callable[[str], BaseResponse]:
        def view(reference: str) -> BaseResponse:
            if request.form.get("confirm") != CONFIRMED:
                return redirect(url_for(f"confirm_{name}", reference=reference), 303)
            try:
                with self.app.db.transaction() as session:
                    submission = self._submission(session, reference)
                    notice = act(session, submission, self._acting())
            except ActionError as exc:
                return redirect(
                    url_for(f"confirm_{name}", reference=reference, refused=exc.code), 303
                )
            return self._done(submission.reference, notice)

        return view

    def _done(self, reference: str, notice: str) -> BaseResponse:
        return redirect(
            url_for("submission", reference=reference, done=notice, _anchor="audit"), 303
        )

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

    def _acting(self) -> Acting:
        """The person signed in, now, with the reason the form gives."""
        return Acting(g.actor, request.form.get("reason", ""), self.desk.now())

    def accept(self, session: Session, submission: Submission, acting: Acting) -> str:
        actions.accept_by_decision(session, submission, acting)
        return "accepted"

    def withdraw(self, session: Session, submission: Submission, acting: Acting) -> str:
        actions.withdraw(session, submission, acting)
        return "withdrawn"

    def resend(self, session: Session, submission: Submission, acting: Acting) -> str:
        actions.resend_last_reply(session, self.app, self.letters, submission, acting)
        return "resent"

    def note(self, reference: str) -> BaseResponse:
        """A note changes no status and sends nothing: it is saved without a confirmation step."""
        try:
            with self.app.db.transaction() as session:
                submission = self._submission(session, reference)
                actions.add_note(session, self._acting(), submission=submission)
        except ActionError as exc:
            return redirect(
                url_for("submission", reference=reference, refused=exc.code, _anchor="actions"),
                303,
            )
        return self._done(submission.reference, "noted")

    def send(self, reference: str) -> BaseResponse:
        """Queue the letter as the person edited it; refused, its text is kept for them."""
        form = request.form
        try:
            with self.app.db.transaction() as session:
                submission = self._submission(session, reference)
                if form.get("confirm") != CONFIRMED:
                    raise ActionError("not_confirmed")
                letter = WrittenLetter(
                    form.get("template", ""), form.get("subject", ""), form.get("body", "")
                )
                actions.write_to_applicant(
                    session, self.app, self.letters, submission, self._acting(), letter
                )
                drafts.discard(session, g.actor.user_id, submission)
        except ActionError as exc:
            with self.app.db.transaction() as session:
                drafts.keep(session, form.get("draft", ""), reference, form, self.desk.now())
            return redirect(url_for("write", reference=reference, refused=exc.code), 303)
        return self._done(submission.reference, "written")

    def discard(self, reference: str) -> BaseResponse:
        """Forget the kept text and draft the letter from its template again."""
        with self.app.db.transaction() as session:
            submission = self._submission(session, reference)
            drafts.discard(session, g.actor.user_id, submission)
        template = request.form.get("template", "")
        return redirect(url_for("write", reference=submission.reference, template=template), 303)

    def mail_note(self, mail_id: int) -> BaseResponse:
        try:
            with self.app.db.transaction() as session:
                mail = session.get(Mail, mail_id)
                if mail is None or mail.call_id != self.app.call.id:
                    abort(404)
                actions.add_note(session, self._acting(), mail=mail)
        except ActionError as exc:
            return redirect(url_for("mail", mail_id=mail_id, refused=exc.code), 303)
        return redirect(url_for("mail", mail_id=mail_id, done="noted", _anchor="audit"), 303)
