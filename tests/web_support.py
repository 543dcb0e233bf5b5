"""Support for the intake desk's tests: a desk filled through the real pipeline, and plain HTTP."""

from __future__ import annotations

import http.client
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import Flask
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import load_settings
from mailbot.demo import run_demo
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from mailbot.store.models import Reply, Submission, utcnow
from mailbot.web.app import create_app
from mailbot.web.auth import add_user
from mailbot.web.server import BackgroundServer
from tests.daemon_support import july
from tests.mailfactory.documents import pdf_bytes

NAME, PASSWORD = "wang.fang", "correct horse battery staple"
HOSTILE_SUBJECT = "<script>alert(1)</script>"
HOSTILE_INSTITUTION = "<img src=x onerror=alert(2)>研究所"
HOSTILE_PI = "<b>Mallory</b>"
# A quote, a right-to-left override that makes "…fdp.exe" read "…exe.pdf", and a name a
# browser must never take as a header or a path.
HOSTILE_FILENAME = 'evil"name\u202efdp.exe.pdf'


class Clock:
    """The desk's clock, moved by the test (for session and rate-limit windows)."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self.stopped: datetime | None = None  # set: time stands still there (plus the offset)

    def __call__(self) -> datetime:
        return (self.stopped or utcnow()) + self.offset


def hostile_mails() -> list[tuple[datetime, bytes]]:
    """Mails whose every field an applicant controls holds markup."""
    script = EmailMessage()
    script["From"] = f'"{HOSTILE_PI}" <mallory@example.org>'
    script["To"] = "anso2021program@anso.org.cn"
    script["Subject"] = HOSTILE_SUBJECT
    script["Date"] = format_datetime(july(25, 9))
    script["Message-ID"] = make_msgid(domain="example.org")
    script.set_content("<script>alert('body')</script>")

    stem = f"{HOSTILE_INSTITUTION}+{HOSTILE_PI}"
    proposal = EmailMessage()
    proposal["From"] = "Mallory <mallory@example.org>"
    proposal["To"] = "anso2021program@anso.org.cn"
    proposal["Subject"] = f"合作专项建议书：{stem}"
    proposal["Date"] = format_datetime(july(25, 10))
    proposal["Message-ID"] = make_msgid(domain="example.org")
    proposal.set_content("请查收。")
    proposal.add_attachment(
        pdf_bytes(1), maintype="application", subtype="pdf", filename=f"{stem}.pdf"
    )
    proposal.add_attachment(
        pdf_bytes(1, "evil"), maintype="application", subtype="pdf", filename=HOSTILE_FILENAME
    )
    return [(july(25, 9), script.as_bytes()), (july(25, 10), proposal.as_bytes())]


@dataclass
class RunningDesk:
    """A desk on 127.0.0.1 over the demo's mailbox plus hostile mail, and its account."""

    app: App
    flask: Flask
    url: str
    clock: Clock
    root: Path


def bounce(reply: Reply, received_at: datetime) -> bytes:
    """A delivery-status report for one of mailbot's replies, quoting its headers."""
    report = EmailMessage()
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.ac.cn>"
    report["To"] = "anso2021program@anso.org.cn"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = format_datetime(received_at)
    report["Message-ID"] = make_msgid(domain="mx.example.ac.cn")
    report["Return-Path"] = "<>"
    report.set_content(f"<{reply.to_address}>: mailbox full")
    report.add_attachment(
        f"Message-ID: {reply.message_id}\nSubject: reply\n".encode(),
        maintype="text",
        subtype="rfc822-headers",
    )
    return report.as_bytes()


BOUNCED_PI = "王堃"


def filled_app(root: Path) -> App:
    """The demo's mailbox, hostile mails and a bounce, run through Maildir and Daemon.once()."""
    run_demo(root)
    app = App.build(load_settings(root / "mailbot.toml"))
    for received_at, raw in hostile_mails():
        deliver(root / "Maildir", raw, received_at)
    Daemon(app).once()
    with app.db.transaction() as session:
        submission = session.scalar(select(Submission).where(Submission.pi == BOUNCED_PI))
        assert submission is not None
        reply = session.scalars(
            select(Reply).where(Reply.submission_id == submission.id).order_by(Reply.id.desc())
        ).first()
        assert reply is not None
    deliver(root / "Maildir", bounce(reply, july(29, 8)), july(29, 8))
    Daemon(app).once()
    with app.db.transaction() as session:
        add_user(session, NAME, PASSWORD)
    return app


@contextmanager
def running_desk(root: Path, *, secure_cookies: bool = False) -> Iterator[RunningDesk]:
    if root.exists():
        shutil.rmtree(root)
    app = filled_app(root)
    clock = Clock()
    flask = create_app(app, secure_cookies=secure_cookies, clock=clock)
    try:
        with BackgroundServer(flask) as server:
            yield RunningDesk(app, flask, server.url, clock, root)
    finally:
        app.close()


# --------------------------------------------------------------------------- plain HTTP


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []


class Client:
    """HTTP to 127.0.0.1 as a browser speaks it: cookies kept, redirects not followed."""

    def __init__(self, base: str, source: str | None = None) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.origin = base
        self.jar: dict[str, str] = {}
        # Another loopback address (127.0.0.2 ...) to speak from: another client to the desk.
        self.source = (source, 0) if source else None

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=30, source_address=self.source
        )
        sent = dict(headers or {})
        if self.jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.headers, response.read())
        finally:
            connection.close()
        for cookie in answer.cookies():
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if value and "Max-Age=0" not in cookie:
                self.jar[name] = value
            else:
                self.jar.pop(name, None)
        return answer

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict[str, str], **headers: str) -> Answer:
        return self.request("POST", path, form, headers={"Origin": self.origin, **headers})

    def login(self, name: str = NAME, password: str = PASSWORD) -> Answer:
        page = self.get("/login")
        return self.post(
            "/login", {"csrf_token": form_token(page.text), "name": name, "password": password}
        )

    def token(self, path: str = "/") -> str:
        """The CSRF token of this session, as its pages carry it."""
        return form_token(self.get(path).text)


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
