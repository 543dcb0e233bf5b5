"""`mailbot doctor` against real Dovecot and aiosmtpd with TLS from a private CA."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from click.testing import CliRunner

from mailbot.cli import main
from mailbot.store.db import Database
from tests.conftest import ROOT
from tests.servers.common import free_port
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpSink
from tests.tlsfactory import CertificateAuthority, ServerCertificate

ADDRESS = "anso2021program@anso.org.cn"


@pytest.fixture
def imap(dovecot_tls: Dovecot) -> Iterator[Dovecot]:
    """The TLS Dovecot, emptied, with the outcome folder the clock probe may use."""
    dovecot_tls.clear()
    dovecot_tls.create_folder("mailbot.ignored")  # Dovecot's delimiter here is "."
    yield dovecot_tls
    dovecot_tls.clear()


def toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # TOML strings, numbers and lists read alike


def write_config(
    folder: Path, imap: Dovecot | None, smtp: SmtpSink | None, **sections: dict[str, Any]
) -> Path:
    """A config as an operator writes one: absolute paths, passwords in the environment."""
    tables: dict[str, dict[str, Any]] = {
        "": {
            "rules": str(ROOT / "rules" / "anso2021.toml"),
            "templates_dir": str(ROOT / "templates"),
            "database_url": f"sqlite:///{folder / 'mailbot.sqlite3'}",
            "store_dir": str(folder / "store"),
        },
        "digest": {"to": ["secretariat@anso.org.cn"]},
    }
    if imap is not None:
        tables["source"] = {"kind": "imap"}
        tables["source.imap"] = {
            "host": imap.host, "port": imap.tls_port, "security": "ssl",
            "username": imap.user, "ca_file": "ca.pem", "timeout": "10s",
        }  # fmt: skip
    if smtp is not None:
        tables["replies"] = {"transport": "smtp", "from_address": ADDRESS}
        tables["replies.smtp"] = {
            "host": smtp.host, "port": smtp.port, "security": "starttls",
            "username": smtp.user, "ca_file": "ca.pem", "timeout": "10s",
        }  # fmt: skip
    for name, values in sections.items():
        tables.setdefault(name.replace("_", "."), {}).update(values)
    lines: list[str] = []
    for name, values in tables.items():
        if name:
            lines.append(f"[{name}]")
        lines += [
            f"{key} = {toml_value(value)}" for key, value in values.items() if value is not None
        ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def setup(
    tmp_path: Path,
    imap: Dovecot,
    smtp_tls_sink: SmtpSink,
    private_ca: CertificateAuthority,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A working setup: database initialised, store made, both servers on TLS, passwords set."""
    shutil.copy(private_ca.cert, tmp_path / "ca.pem")
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", imap.password)
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", smtp_tls_sink.password)
    config = write_config(tmp_path, imap, smtp_tls_sink)
    result = CliRunner().invoke(main, ["--config", str(config), "init"])
    assert result.exit_code == 0, result.output
    (tmp_path / "store").mkdir(mode=0o700)
    return config


def doctor(config: Path, *args: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """Run `mailbot doctor --json`; its exit code, its checks by name, and the raw output."""
    result = CliRunner().invoke(main, ["--config", str(config), "doctor", "--json", *args])
    data = json.loads(result.stdout)
    checks = {c["check"]: c for c in data["checks"]}
    assert data["ok"] == (result.exit_code == 0)
    return result.exit_code, checks, result.stdout


def failures(checks: dict[str, dict[str, str]]) -> set[str]:
    return {name for name, c in checks.items() if c["status"] == "fail"}


def test_a_good_setup_exits_0_and_says_so_in_one_line_per_check(
    setup: Path, imap: Dovecot, smtp_tls_sink: SmtpSink
) -> None:
    result = CliRunner().invoke(main, ["--config", str(setup), "doctor"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("ready: 0 failures, 0 warnings")
    by_check = {line.split(":", 1)[0].split(None, 1)[1]: line for line in lines[:-1]}
    assert all(line.startswith(("ok ", "skip ")) for line in by_check.values()), result.stdout
    assert by_check["SMTP clock"].startswith("skip  SMTP clock: not read: the server's greeting")
    assert "certificate for IP Address 127.0.0.1" not in by_check["IMAP TLS"]
    assert "127.0.0.1 (issued by mailbot test CA)" in by_check["IMAP TLS"]
    assert "valid until" in by_check["IMAP TLS"]
    assert "verified" in by_check["IMAP TLS"]
    assert "IDLE, MOVE, UIDPLUS, ID" in by_check["IMAP capabilities"]
    assert "mailbot/ignored exists" in by_check["IMAP outcome folders"]
    assert (
        "mailbot/accepted, mailbot/needs-correction, mailbot/late will be created"
        in (by_check["IMAP outcome folders"])
    )
    assert "IMAP clock" in by_check
    assert "SMTP TLS" in by_check
    # A dry run: nothing created, the clock probe gone, no message sent, no secret shown.
    with imap.client() as client:
        names = {name for _flags, _sep, name in client.list_folders()}
    assert names == {"INBOX", "mailbot", "mailbot.ignored"}
    assert imap.list_uids("INBOX") == []
    assert imap.list_uids("mailbot.ignored") == []
    assert smtp_tls_sink.messages == []
    assert imap.password not in result.output
    assert smtp_tls_sink.password not in result.output


def test_send_test_sends_one_message_to_the_address_given(
    setup: Path, smtp_tls_sink: SmtpSink
) -> None:
    code, checks, _ = doctor(setup, "--send-test", "wang.fang@anso.org.cn")
    assert code == 0
    assert "a test message went to wang.fang@anso.org.cn" in checks["SMTP login"]["text"]
    [message] = smtp_tls_sink.wait_for(1)
    assert message.rcpt_tos == ("wang.fang@anso.org.cn",)
    assert message.mail_from == ADDRESS
    assert message.auth_user == smtp_tls_sink.user
    assert message.message["Auto-Submitted"] == "auto-generated"


def test_a_wrong_imap_password_is_named_as_a_refused_login(
    setup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", "not-the-password")
    code, checks, output = doctor(setup)
    assert code == 1
    assert failures(checks) == {"IMAP login"}
    assert "refused the login" in checks["IMAP login"]["text"]
    assert "$MAILBOT_IMAP_PASSWORD" in checks["IMAP login"]["fix"]
    assert "not-the-password" not in output


def test_a_missing_watched_folder_is_named(tmp_path: Path, setup: Path, imap: Dovecot) -> None:
    config = write_config(tmp_path, imap, None, source_imap={"folders": ["INBOX", "申请书"]})
    code, checks, _ = doctor(config)
    assert code == 1
    assert failures(checks) == {"IMAP folders"}
    assert "申请书" in checks["IMAP folders"]["text"]
    assert "INBOX" not in checks["IMAP folders"]["text"]


def test_an_untrusted_certificate_is_named_with_the_fix_ca_file(
    tmp_path: Path, setup: Path, imap: Dovecot, smtp_tls_sink: SmtpSink
) -> None:
    config = write_config(tmp_path, imap, smtp_tls_sink, source_imap={"ca_file": None})
    code, checks, _ = doctor(config)
    assert code == 1
    assert failures(checks) == {"IMAP TLS"}
    assert "is not trusted" in checks["IMAP TLS"]["text"]
    assert "set ca_file in [source.imap]" in checks["IMAP TLS"]["fix"]
    assert checks["IMAP login"]["status"] == "skip"


def test_starttls_is_checked_and_tls_on_a_plain_port_is_named(
    tmp_path: Path, setup: Path, imap: Dovecot, smtp_tls_sink: SmtpSink
) -> None:
    starttls = {"security": "starttls", "port": imap.port}
    code, checks, _ = doctor(write_config(tmp_path, imap, smtp_tls_sink, source_imap=starttls))
    assert code == 0
    assert checks["IMAP TLS"]["status"] == "ok"
    assert "verified with ca_file" in checks["IMAP TLS"]["text"]
    wrong = {"security": "ssl", "port": imap.port}
    code, checks, _ = doctor(write_config(tmp_path, imap, smtp_tls_sink, source_imap=wrong))
    assert code == 1
    assert failures(checks) == {"IMAP TLS"}
    assert checks["IMAP TLS"]["text"].startswith(f"no TLS with 127.0.0.1:{imap.port}")
    assert '"ssl" on 993/465, "starttls" on 143/587' in checks["IMAP TLS"]["fix"]


def test_a_server_without_starttls_is_named(
    tmp_path: Path,
    setup: Path,
    dovecot: Dovecot,
    smtp_tls_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", dovecot.password)
    plain_only = {"security": "starttls", "port": dovecot.port, "username": dovecot.user}
    code, checks, _ = doctor(write_config(tmp_path, None, smtp_tls_sink, source={"kind": "imap"},
                                          source_imap={"host": dovecot.host, **plain_only}))  # fmt: skip
    assert code == 1
    assert failures(checks) == {"IMAP TLS"}
    assert "does not offer STARTTLS" in checks["IMAP TLS"]["text"]


def test_a_certificate_for_another_name_is_named_so(
    tmp_path: Path,
    setup: Path,
    imap: Dovecot,
    private_ca: CertificateAuthority,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = private_ca.issue("mail.example.org")
    sink = SmtpSink(tls_context=private_ca.server_context(other))
    with sink:
        monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", sink.password)
        code, checks, _ = doctor(write_config(tmp_path, imap, sink))
    assert code == 1
    assert failures(checks) == {"SMTP TLS"}
    assert "does not name this host" in checks["SMTP TLS"]["text"]


def test_an_unreachable_smtp_server_is_named(
    tmp_path: Path, setup: Path, imap: Dovecot, smtp_tls_sink: SmtpSink
) -> None:
    config = write_config(tmp_path, imap, smtp_tls_sink, replies_smtp={"port": free_port()})
    code, checks, _ = doctor(config)
    assert code == 1
    assert failures(checks) == {"SMTP TCP"}
    assert "cannot reach 127.0.0.1:" in checks["SMTP TCP"]["text"]
    assert checks["SMTP login"]["status"] == "skip"


def test_a_database_behind_the_current_migration_is_named(setup: Path, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'mailbot.sqlite3'}")
    head = db.revision()
    command.downgrade(db.alembic_config(), "-1")
    db.dispose()
    code, checks, _ = doctor(setup)
    assert code == 1
    assert failures(checks) == {"database"}
    assert f"not at {head}" in checks["database"]["text"]
    assert checks["database"]["fix"] == f"run `mailbot --config {setup} init`"


def test_a_missing_database_is_named_and_not_created(setup: Path, tmp_path: Path) -> None:
    (tmp_path / "mailbot.sqlite3").unlink()
    code, checks, _ = doctor(setup)
    assert code == 1
    assert failures(checks) == {"database"}
    assert "there is no database at" in checks["database"]["text"]
    assert not (tmp_path / "mailbot.sqlite3").exists()


def test_a_clock_ten_minutes_off_fails(
    tmp_path: Path,
    setup: Path,
    imap: Dovecot,
    private_ca: CertificateAuthority,
    server_certificate: ServerCertificate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ahead = format_datetime(datetime.now(UTC) + timedelta(minutes=10))
    sink = SmtpSink(
        tls_context=private_ca.server_context(server_certificate), ident=f"ESMTP ready at {ahead}"
    )
    with sink:
        monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", sink.password)
        code, checks, _ = doctor(write_config(tmp_path, imap, sink))
    assert code == 1
    assert failures(checks) == {"SMTP clock"}
    assert "ahead of this machine's" in checks["SMTP clock"]["text"]
    assert checks["IMAP clock"]["status"] == "ok"


def test_unwise_settings_are_warnings_and_exit_0(tmp_path: Path, setup: Path) -> None:
    (tmp_path / "Maildir").mkdir()
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir()
    config = write_config(
        tmp_path, None, None, source={"kind": "maildir"}, source_maildir={"path": "Maildir"},
        digest={"to": []},
    )  # fmt: skip
    code, checks, _ = doctor(config)
    assert code == 0
    assert checks["digest"]["status"] == "warn"
    assert checks["outbox folder"]["status"] == "warn"
    assert checks["Maildir"]["status"] == "ok"
    assert "touch -d" in checks["Maildir"]["text"]


def test_insecure_and_plain_connections_are_warnings_and_exit_0(
    tmp_path: Path, setup: Path, imap: Dovecot, smtp_tls_sink: SmtpSink
) -> None:
    config = write_config(
        tmp_path, imap, smtp_tls_sink,
        source_imap={"ca_file": None, "insecure": True},
        replies_smtp={"security": "plain"},
    )  # fmt: skip
    code, checks, _ = doctor(config)
    assert code == 0
    assert checks["IMAP TLS"]["status"] == "warn"
    assert "NOT verified (insecure = true)" in checks["IMAP TLS"]["text"]
    assert checks["IMAP login"]["status"] == "ok"
    assert checks["SMTP TLS"]["status"] == "warn"
    assert "a plain connection to 127.0.0.1" in checks["SMTP TLS"]["text"]
    assert checks["SMTP login"]["status"] == "ok"


def test_a_missing_maildir_fails(tmp_path: Path, setup: Path) -> None:
    config = write_config(tmp_path, None, None, source_maildir={"path": "no/such/Maildir"})
    code, checks, _ = doctor(config)
    assert code == 1
    assert failures(checks) == {"Maildir"}
    assert "does not exist" in checks["Maildir"]["text"]


def _without_root_powers() -> list[str]:
    """Run as root but without the capabilities that let root write where modes forbid it."""
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.slow  # `mailbot doctor` in its own process
def test_a_store_mailbot_cannot_write_is_named() -> None:
    """A store whose modes let nobody write, not even the user mailbot runs as."""
    folder = Path(tempfile.mkdtemp(prefix="mailbot-doctor-", dir="/tmp"))
    store = folder / "store"
    try:
        maildir = folder / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        config = write_config(folder, None, None, source_maildir={"path": "Maildir"})
        assert CliRunner().invoke(main, ["--config", str(config), "init"]).exit_code == 0
        store.mkdir(mode=0o500)
        store.chmod(0o500)
        prefix = _without_root_powers() if os.geteuid() == 0 else []
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "mailbot", "--config", str(config), "doctor", "--json"],
            capture_output=True, text=True, timeout=120, cwd=folder, check=False,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
        assert failures(checks) == {"store"}
        assert f"{store} is not writable" in checks["store"]["text"]
        assert f"chmod u+rwx {store}" in checks["store"]["fix"]
    finally:
        if store.exists():
            store.chmod(0o700)
        shutil.rmtree(folder)


def test_without_a_config_it_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    assert "FAIL  config: no config given" in result.stdout
    assert "--config PATH or MAILBOT_CONFIG" in result.stdout


def test_rules_that_do_not_load_fail_and_the_servers_wait_for_them(
    tmp_path: Path, setup: Path, imap: Dovecot, smtp_tls_sink: SmtpSink
) -> None:
    config = write_config(tmp_path, imap, smtp_tls_sink, **{"": {"rules": "rules/anso2021.toml"}})
    code, checks, _ = doctor(config)
    assert code == 1
    assert failures(checks) == {"rules"}
    assert "rules/anso2021.toml: no such rules file" in checks["rules"]["text"]
    assert checks["IMAP"]["status"] == checks["SMTP"]["status"] == "skip"


def test_store_files_open_to_others_are_a_warning(setup: Path, tmp_path: Path) -> None:
    blob = tmp_path / "store" / "ab" / "cd" / ("abcd" + "0" * 60)
    blob.parent.mkdir(parents=True, mode=0o700)
    blob.parent.parent.chmod(0o755)
    blob.write_bytes(b"a proposal")
    blob.chmod(0o644)
    code, checks, _ = doctor(setup)
    assert code == 0
    assert checks["store modes"]["status"] == "warn"
    assert "2 of the store's files or folders are open to others" in checks["store modes"]["text"]
    assert "ab 0755" in checks["store modes"]["text"]
    assert f"chmod -R u=rwX,go= {tmp_path / 'store'}" == checks["store modes"]["fix"]


def test_a_certificate_about_to_expire_is_a_warning(
    tmp_path: Path,
    setup: Path,
    imap: Dovecot,
    private_ca: CertificateAuthority,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    soon = private_ca.issue("127.0.0.1", days=5)
    with SmtpSink(tls_context=private_ca.server_context(soon)) as sink:
        monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", sink.password)
        code, checks, _ = doctor(write_config(tmp_path, imap, sink))
    assert code == 0
    assert checks["SMTP TLS"]["status"] == "warn"
    assert "(4 days)" in checks["SMTP TLS"]["text"] or "(5 days)" in checks["SMTP TLS"]["text"]
    assert "renewed soon" in checks["SMTP TLS"]["fix"]


def test_postgresql_at_the_current_migration_and_unreachable_without_its_password(
    tmp_path: Path, setup: Path, database_url: str
) -> None:
    from sqlalchemy import make_url

    db = Database(database_url)
    db.upgrade()
    db.dispose()
    (tmp_path / "Maildir").mkdir()
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir()
    config = write_config(
        tmp_path,
        None,
        None,
        source_maildir={"path": "Maildir"},
        **{"": {"database_url": database_url}},
    )
    code, checks, output = doctor(config)
    assert code == 0, output
    assert checks["database"]["status"] == "ok"
    assert "(the current one)" in checks["database"]["text"]
    url = make_url(database_url)
    gone = url.set(port=free_port()).render_as_string(hide_password=False)
    config = write_config(
        tmp_path, None, None, source_maildir={"path": "Maildir"}, **{"": {"database_url": gone}}
    )
    code, checks, output = doctor(config)
    assert code == 1
    assert failures(checks) == {"database"}
    assert "cannot reach postgresql+psycopg://mailbot:***@127.0.0.1:" in checks["database"]["text"]
    assert url.password
    assert url.password not in output
