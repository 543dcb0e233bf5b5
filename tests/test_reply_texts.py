"""Every reply template, rendered with every context the pipeline builds for it, reads whole:
no `None`, no empty value, no field left unfilled."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailbot.intake.reprocess import reprocess
from mailbot.replies.digest import queue_digest
from mailbot.replies.reminders import queue_reminders
from mailbot.replies.render import Renderer
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver
from tests.conftest import ROOT, RULES, write_rules
from tests.daemon_support import july, proposal, settings_values
from tests.docfactory import form_docx
from tests.fixtures import AppFactory
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes

TEMPLATES = ROOT / "templates"
OTHER = ("中国科学院微生物研究所", "李娜")
LATE = ("中国科学院大气物理研究所", "王堃")
WANTING = ("中国科学院动物研究所", "刘洋")  # still lacks its PDF when reminded


class Recorder(Renderer):
    """The real renderer, noting each (template, context) the pipeline asks it for."""

    def __init__(self, templates_dir: Path) -> None:
        super().__init__(templates_dir)
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def render(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        self.seen.append((name, copy.deepcopy(dict(context))))
        return super().render(name, context)


def _whole(value: Any) -> Any:
    # Jinja2 calls this on every {{ ... }} before writing it into the text.
    if value is None:
        raise ValueError("a template printed None")
    if isinstance(value, str) and not value.strip():
        raise ValueError("a template printed an empty value")
    return value


def strict_renderer() -> Renderer:
    renderer = Renderer(TEMPLATES)
    renderer.environment.finalize = _whole
    return renderer


def _every_kind_of_mail(maildir: Path) -> None:
    """New, misnamed, without names, resubmission, completion, still wanting, late alone, late after."""
    deliver(maildir, proposal("foxmail", files="misnamed"), july(20))
    deliver(maildir, proposal("foxmail", files="good"), july(21))
    deliver(maildir, proposal("coremail", *OTHER, files="no_pdf"), july(22))
    deliver(maildir, proposal("coremail", *OTHER, files="pdf_only"), july(23))
    files = [Att("proposal.docx", form_docx()), Att("scan.pdf", pdf_bytes())]
    deliver(maildir, build_mail("gmail", subject="application", attachments=files), july(24))
    deliver(maildir, build_mail("outlook", subject="合作专项建议书：", attachments=()), july(25))
    deliver(maildir, proposal("outlook", *WANTING, files="no_pdf"), july(26))
    deliver(maildir, proposal("qqmail", *LATE, files="good"), july(31))
    deliver(maildir, proposal("foxmail", files="good"), july(31, 12))


@pytest.mark.slow  # the whole pipeline, twice
def test_every_reply_template_reads_whole_with_every_context_the_code_builds(
    tmp_path: Path,
    make_app: AppFactory,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    values = settings_values(tmp_path, db_url, digest={"to": ["secretariat@anso.org.cn"]})
    app = make_app(values)
    recorder = Recorder(TEMPLATES)
    app.renderer = recorder
    _every_kind_of_mail(tmp_path / "Maildir")
    Daemon(app).once()
    with app.db.transaction() as session:
        queue_digest(
            session,
            settings=app.settings.replies,
            call=app.call,
            renderer=app.renderer,
            to=app.settings.digest.to,
            now=datetime(2021, 8, 1, 1, 0, tzinfo=UTC),
        )
        queue_reminders(
            session,
            call=app.call,
            settings=app.settings.replies,
            renderer=app.renderer,
            hours_before=app.settings.reminders.hours_before,
            now=datetime(2021, 7, 29, 16, 0, tzinfo=UTC),  # 24 h before the deadline
        )
    # A reprocess after a deadline change tells the late ones they are accepted after all.
    text = RULES.read_text(encoding="utf-8")
    rules = write_rules(tmp_path, text.replace("2021-07-30 24:00", "2021-08-06 24:00"))
    later = make_app({**values, "rules": str(rules)})
    later.renderer = recorder
    assert reprocess(later, reply=True).replies == 2

    rendered = {name for name, _context in recorder.seen}
    shipped = {p.name.split(".")[0] for p in (TEMPLATES / "reply").glob("*.txt.j2")}
    assert rendered == shipped  # every template was asked for
    kinds = {c.get("kind") for name, c in recorder.seen if name == "accepted"}
    assert kinds == {"new", "resubmission", "completion"}
    assert any(c["institution"] is None for n, c in recorder.seen if n == "needs_correction")

    strict = strict_renderer()
    for name, context in recorder.seen:
        subject, body = strict.render(name, context)
        for text in (subject, body):
            assert "None" not in text, (name, text)
            assert "{{" not in text, (name, text)
            assert "{%" not in text, (name, text)
