"""One institution under many names, the PI's eligibility, the same files twice.

Mails are built as real clients send them and go through `mailbot run
--once` (the command, run in this process) on a Maildir, on SQLite and on
PostgreSQL: the submission's key is a database lookup.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.app import App
from mailbot.calls import Call, RulesError, load_call
from mailbot.cli import main
from mailbot.institutes import Directory, directory
from mailbot.ledger.attention import NEEDS_A_PERSON, needing_a_person
from mailbot.ledger.problem_words import PROBLEM_WORDS
from mailbot.replies.digest import digest_context
from mailbot.sources.maildir import deliver
from mailbot.store.models import Mail, Submission
from mailbot.web.app import create_app
from mailbot.web.auth import add_user
from mailbot.web.server import BackgroundServer
from tests.conftest import ROOT, RULES, write_rules
from tests.daemon_support import july, proposal, settings_values, toml
from tests.docfactory import Form, form_docx
from tests.fixtures import AppFactory
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes
from tests.web_support import NAME, PASSWORD, Client

BOTANY = "中国科学院植物研究所"
NAMES = [BOTANY, "植物研究所", "中科院植物所", "Institute of Botany, CAS"]
PI = "张三"


def _config(tmp_path: Path, db_url: str, rules: Path = RULES) -> Path:
    values = settings_values(tmp_path, db_url)
    values["rules"] = str(rules)
    config = tmp_path / "mailbot.toml"
    config.write_text(toml(values), encoding="utf-8")
    return config


def _mailbot(config: Path, *args: str) -> str:
    """Run a mailbot command as the command line does, in this process (the command closes
    the app it builds, so no database connection outlives it)."""
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _replies(tmp_path: Path) -> list[EmailMessage]:
    """The letters written to the outbox folder, oldest first."""
    found = []
    for path in sorted((tmp_path / "outbox").rglob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        found.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return [m for m in found if isinstance(m, EmailMessage)]


def _text(letter: EmailMessage) -> str:
    body = letter.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _run(config: Path, tmp_path: Path, *mails: bytes) -> str:
    maildir = tmp_path / "Maildir"
    for day, raw in enumerate(mails, 20):
        deliver(maildir, raw, july(day))
    _mailbot(config, "init")
    return _mailbot(config, "run", "--once")


# --------------------------------------------------------------------------- the directory


def test_an_institute_is_known_by_each_of_its_names(call: Call) -> None:
    names = directory(call)
    for name in [*NAMES, "Institute of Botany, Chinese Academy of Sciences", "中国科学院植物所"]:
        assert names.canonical(name) == BOTANY, name
    # The Kunming institute is another one, however alike the names.
    assert names.canonical("昆明植物所") == "中国科学院昆明植物研究所"
    # A former name (the list's third part) finds the institute of today.
    assert names.canonical("中国科学院遥感与数字地球研究所") == "中国科学院空天信息创新研究院"
    assert names.canonical("国科大") == "中国科学院大学"
    # A name the list does not know is the institution as written.
    assert names.canonical("清华大学") == "清华大学"
    # A name two institutes could go by belongs to neither.
    shared = Directory([["中国科学院甲研究所", "共用名"], ["中国科学院乙研究所", "共用名"]])
    assert shared.find("共用名") is None
    assert shared.canonical("甲所") == "中国科学院甲研究所"


# --------------------------------------------------------------------------- one institution


@pytest.mark.slow  # `mailbot run --once`, mail by mail, with its judging processes
def test_one_institute_under_four_names_is_one_submission(
    make_app: AppFactory, tmp_path: Path, db_url: str
) -> None:
    config = _config(tmp_path, db_url)
    # Each mail is consistent in itself: subject and file names name the institute alike.
    once = _run(config, tmp_path, *(proposal("outlook", name, PI) for name in NAMES))
    assert "4 new (accepted 4)" in once

    app = make_app(settings_values(tmp_path, db_url))
    with app.db.transaction() as session:
        [submission] = session.scalars(select(Submission)).all()
        assert (submission.reference, submission.institution) == ("ANSO2021-0001", BOTANY)
        assert submission.current_version == 4
        assert [v.kind for v in submission.versions] == ["new"] + ["resubmission"] * 3
    letters = _replies(tmp_path)
    assert len(letters) == 4
    for letter in letters:
        text = _text(letter)
        assert "ANSO2021-0001" in text
        assert f"项目牵头单位：{BOTANY}" in text
        assert f"Lead institution: {BOTANY}" in text

    log = _mailbot(config, "log")
    assert "1 submission (accepted 1)" in log
    assert BOTANY in log
    for name in [*NAMES, "植物所", "Institute of Botany"]:
        found = _mailbot(config, "log", "--search", name)
        assert "ANSO2021-0001" in found, name
    assert "ANSO2021-0001" not in _mailbot(config, "log", "-q", "微生物所")


@pytest.mark.slow  # `mailbot run --once`, mail by mail, with its judging processes
def test_a_submission_keyed_before_canonical_names_takes_the_next_version(
    make_app: AppFactory, tmp_path: Path, db_url: str
) -> None:
    """A database from before keys a submission by the name its first mail wrote."""
    config = _config(tmp_path, db_url)
    _mailbot(config, "init")
    app = make_app(settings_values(tmp_path, db_url))
    with app.db.transaction() as session:
        session.add(
            Submission(
                call_id=app.call.id,
                seq=1,
                reference="ANSO2021-0001",
                institution="植物所",
                pi=PI,
                institution_key="植物所",
                pi_key=PI,
                status="needs_correction",
                current_version=0,
            )
        )
    once = _run(config, tmp_path, proposal("foxmail", "Institute of Botany, CAS", PI))
    assert "1 new (accepted 1)" in once
    with app.db.transaction() as session:
        [submission] = session.scalars(select(Submission)).all()
        assert (submission.reference, submission.current_version) == ("ANSO2021-0001", 1)
        assert submission.status == "accepted"


# --------------------------------------------------------------------------- eligibility


def _eligibility_rules(tmp_path: Path, *, tell: bool) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    text = RULES.read_text(encoding="utf-8").replace(
        "tell_applicant = false", f"tell_applicant = {'true' if tell else 'false'}"
    )
    rules = write_rules(folder, text)
    (folder / "ongoing_projects.txt").write_text(
        "# PI | institution | project\n"
        f"{PI} | 植物所 | ANSO-CR-KP-2020-07 中亚植物多样性保护\n"
        "李四 | 中国科学院微生物研究所 | CAS 国际伙伴计划 151111KYSB20190001\n",
        encoding="utf-8",
    )
    return rules


def test_the_rules_list_the_ongoing_projects(tmp_path: Path) -> None:
    assert load_call(RULES).ongoing_projects == []  # empty as shipped
    call = load_call(_eligibility_rules(tmp_path, tell=False))
    assert [(p.pi, p.institution) for p in call.ongoing_projects] == [
        (PI, "植物所"),
        ("李四", "中国科学院微生物研究所"),
    ]
    assert call.ongoing_projects[0].project == "ANSO-CR-KP-2020-07 中亚植物多样性保护"


def test_a_broken_or_missing_projects_list_is_one_clear_rules_error(tmp_path: Path) -> None:
    rules = _eligibility_rules(tmp_path, tell=False)
    listed = rules.parent / "ongoing_projects.txt"
    listed.write_text("张三\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"\[eligibility\] ongoing_projects: .*entry 1: expected"):
        load_call(rules)
    listed.unlink()
    with pytest.raises(RulesError, match=r"\[eligibility\] ongoing_projects: cannot read"):
        load_call(rules)


@pytest.mark.slow  # `mailbot run --once`, mail by mail, with its judging processes
def test_a_pi_leading_an_ongoing_project_is_shown_to_the_secretariat_alone(
    make_app: AppFactory, tmp_path: Path, db_url: str
) -> None:
    config = _config(tmp_path, db_url, _eligibility_rules(tmp_path, tell=False))
    # The list names the institute one way, the mail another; a namesake elsewhere is not listed.
    once = _run(
        config,
        tmp_path,
        proposal("qqmail", "Institute of Botany, CAS", PI),
        proposal("coremail", "中国科学院动物研究所", PI),
    )
    assert "2 new (accepted 2)" in once  # a warning: the secretariat decides

    app = make_app(settings_values(tmp_path, db_url, rules=str(config.parent / "rules/rules.toml")))
    with app.db.transaction() as session:
        mails = session.scalars(select(Mail).order_by(Mail.id)).all()
        assert [
            [p["code"] for p in m.problems if p["code"] == "pi_ongoing_project"] for m in mails
        ] == [
            ["pi_ongoing_project"],
            [],
        ]
        assert "ANSO-CR-KP-2020-07" in mails[0].problems[-1]["message_zh"]
        attention = needing_a_person(session, app.call)
        assert [(m.id, m.reasons) for m in attention.mails] == [
            (mails[0].id, ["pi_ongoing_project"])
        ]
        digest = digest_context(session, app.call, since=None, now=july(31, 12))
        assert [item["mail_id"] for item in digest["needs_a_person"]] == [mails[0].id]
    letters = _replies(tmp_path)
    assert len(letters) == 2
    assert not any("ANSO-CR-KP-2020-07" in _text(letter) for letter in letters)
    assert not any("ongoing" in _text(letter) for letter in letters)
    log = _mailbot(config, "log")
    assert "负责人有在研项目 PI leads ongoing project" in log
    _desk_shows(app, mails[0].id)


def _desk_shows(app: App, mail_id: int) -> None:
    """The desk's overview lists the mail under Needs attention; its submission page says why."""
    with app.db.transaction() as session:
        add_user(session, NAME, PASSWORD)
    with BackgroundServer(create_app(app)) as server:
        client = Client(server.url)
        assert client.login().status == 303
        overview = client.get("/").text
        attention = overview[overview.index('id="attention"') : overview.index('id="activity"')]
        assert f'href="/mails/{mail_id}"' in attention
        assert "the PI leads an ongoing project" in attention
        page = client.get("/submissions/ANSO2021-0001").text
        assert "ANSO-CR-KP-2020-07" in page


@pytest.mark.slow  # `mailbot run --once`, mail by mail, with its judging processes
def test_the_rules_may_tell_the_applicant_too(tmp_path: Path) -> None:
    config = _config(
        tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", _eligibility_rules(tmp_path, tell=True)
    )
    _run(config, tmp_path, proposal("gmail", "植物研究所", PI))
    [letter] = _replies(tmp_path)
    assert "ANSO-CR-KP-2020-07" in _text(letter)
    assert "leads an ongoing CAS international-partnership or ANSO joint project" in _text(letter)


# --------------------------------------------------------------------------- the same files twice


@pytest.mark.slow  # `mailbot run --once`, mail by mail, with its judging processes
def test_the_same_files_under_another_institution_and_pi_are_flagged(
    make_app: AppFactory, tmp_path: Path, db_url: str
) -> None:
    config = _config(tmp_path, db_url)
    scan = pdf_bytes(3, "one scan for two proposals")

    def mail(client: str, inst: str, pi: str) -> bytes:
        stem = f"{inst}+{pi}"
        return build_mail(
            client,
            subject=f"合作专项建议书：{stem}",
            attachments=[
                Att(f"{stem}.docx", form_docx(Form(institution=inst, pi=pi))),
                Att(f"{stem}.pdf", scan),
                Att("合作协议.pdf", pdf_bytes(1)),
            ],
            sender=(pi, f"{client}@example.ac.cn"),
        )

    once = _run(
        config,
        tmp_path,
        mail("outlook", BOTANY, PI),
        mail("foxmail", "中国科学院微生物研究所", "王五"),
        # The first applicant again, under another of the institute's names: the scan is
        # their own submission's, and also the second one's.
        mail("gmail", "植物所", PI),
    )
    assert "3 new (accepted 3)" in once

    app = make_app(settings_values(tmp_path, db_url))
    with app.db.transaction() as session:
        mails = session.scalars(select(Mail).order_by(Mail.id)).all()
        flagged = [[p for p in m.problems if p["code"] == "same_files_as"] for m in mails]
        assert [len(found) for found in flagged] == [0, 1, 1]
        [problem] = flagged[1]
        assert problem["severity"] == "info"
        assert "ANSO2021-0001" in problem["message_zh"]
        assert "ANSO2021-0001" in problem["message_en"]
        [again] = flagged[2]
        assert "ANSO2021-0002" in again["message_en"]
        assert "ANSO2021-0001" not in again["message_en"]
        second = session.scalars(select(Submission).where(Submission.seq == 2)).one()
        assert "same_files_as" in [p["code"] for p in second.versions[-1].problems]
        attention = needing_a_person(session, app.call)
        assert [(m.id, m.reasons) for m in attention.mails] == [
            (mails[1].id, ["same_files_as"]),
            (mails[2].id, ["same_files_as"]),
        ]
    # An info: the applicants' letters do not mention it.
    letters = _replies(tmp_path)
    assert "ANSO2021-0001" not in _text(letters[1])
    assert "ANSO2021-0002" not in _text(letters[2])
    assert "与其他申请文件相同 same files as another" in _mailbot(config, "log")
    # Judged again under the same rules, the finding is the same: nothing would change.
    again = _mailbot(config, "reprocess", "--dry-run")
    assert "3 mails judged again: 0 verdicts would change, 0 submissions would change" in again


def test_the_new_codes_have_words_and_a_line_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in ("pi_ongoing_project", "same_files_as"):
        assert code in PROBLEM_WORDS
        assert code in NEEDS_A_PERSON
        assert f"| `{code}` |" in readme
