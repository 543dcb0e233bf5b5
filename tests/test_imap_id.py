"""IMAP ID (RFC 2971): mailbot says who it is after login, as Coremail and NetEase require."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mailbot import __version__
from mailbot.config import ImapSettings
from mailbot.sources.base import SourceError
from mailbot.sources.imap import ImapMailbox
from tests.servers.coremail import UNSAFE_LOGIN, FakeCoremail
from tests.servers.dovecot import Dovecot


def imap_settings(host: str, port: int, user: str, **changes: Any) -> ImapSettings:
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "security": "plain",
        "username": user,
        "timeout": 10.0,
    }
    values.update(changes)
    return ImapSettings(**values)


def session_log(server: Dovecot, start: int) -> str:
    """What Dovecot logged for the one session since ``start``, once that session ended.

    The imap process writes the ID line before its logout line, through one
    log service, so once the logout line is there the ID line would be too.
    """
    ended = re.compile(rf"imap\({re.escape(server.user)}\).*Disconnected: Logged out")
    deadline = time.monotonic() + 10
    while True:
        text = server.log_text()[start:]
        if ended.search(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"Dovecot logged no logout within 10 s:\n{text}")
        time.sleep(0.05)


@pytest.mark.parametrize("send_id", ["auto", "always"])
def test_dovecot_hears_mailbots_name_and_version(mailbox: Dovecot, send_id: str) -> None:
    start = len(mailbox.log_text())
    imap = ImapMailbox(
        imap_settings(mailbox.host, mailbox.port, mailbox.user, send_id=send_id),
        mailbox.password,
    )
    imap.uidvalidity("INBOX")
    imap.close()
    assert f"ID sent: name=mailbot, version={__version__}" in session_log(mailbox, start)


def test_with_send_id_never_dovecot_hears_no_id(mailbox: Dovecot) -> None:
    start = len(mailbox.log_text())
    imap = ImapMailbox(
        imap_settings(mailbox.host, mailbox.port, mailbox.user, send_id="never"),
        mailbox.password,
    )
    imap.uidvalidity("INBOX")
    imap.close()
    assert "ID sent" not in session_log(mailbox, start)


@pytest.fixture
def coremail() -> Iterator[FakeCoremail]:
    with FakeCoremail() as server:
        yield server


def open_coremail(server: FakeCoremail, **changes: Any) -> ImapMailbox:
    return ImapMailbox(
        imap_settings(server.host, server.port, "anso2021@cstnet.cn", **changes), "secret"
    )


def test_a_coremail_server_lets_mailbot_select_after_its_id(coremail: FakeCoremail) -> None:
    imap = open_coremail(coremail)
    try:
        assert imap.uidvalidity("INBOX") == 1625097600
    finally:
        imap.close()
    assert coremail.ids == [f'("name" "mailbot" "version" "{__version__}")'.encode()]


def test_without_id_a_coremail_server_refuses_select_and_the_error_says_so(
    coremail: FakeCoremail,
) -> None:
    imap = open_coremail(coremail, send_id="never")
    try:
        with pytest.raises(SourceError) as caught:
            imap.uidvalidity("INBOX")
    finally:
        imap.close()
    assert coremail.ids == []
    message = str(caught.value)
    assert message.startswith(f"imap://anso2021@cstnet.cn@127.0.0.1:{coremail.port}: ")
    assert UNSAFE_LOGIN in message
    assert "\n" not in message


def test_send_id_always_sends_it_to_a_server_that_does_not_offer_it() -> None:
    with FakeCoremail(advertise_id=False) as server:
        auto = open_coremail(server)
        with pytest.raises(SourceError, match="Unsafe Login"):
            auto.uidvalidity("INBOX")
        auto.close()
        assert server.ids == []
        always = open_coremail(server, send_id="always")
        try:
            assert always.uidvalidity("INBOX") == 1625097600
        finally:
            always.close()
        assert len(server.ids) == 1


def test_id_is_said_again_on_every_new_connection(coremail: FakeCoremail) -> None:
    imap = open_coremail(coremail)
    try:
        imap.uidvalidity("INBOX")
        imap.close()  # as the daemon does after a fault
        assert imap.uidvalidity("INBOX") == 1625097600
    finally:
        imap.close()
    assert len(coremail.ids) == 2


def test_a_refused_id_is_a_warning_and_the_servers_own_refusal_is_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeCoremail(refuse_id=True) as server:
        port = server.port
        imap = open_coremail(server)
        try:
            with pytest.raises(SourceError, match="Unsafe Login"):
                imap.uidvalidity("INBOX")
        finally:
            imap.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"imap://anso2021@cstnet.cn@127.0.0.1:{port} refused the ID command "
        "(id failed: ID not allowed here)"
    ]
