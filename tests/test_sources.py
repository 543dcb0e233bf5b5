"""The IMAP source against a real Dovecot, and the Maildir source on disk."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import ImapSettings
from mailbot.sources.base import Cursor, Fetched, Filing, Flag, MoveTo, SourceError
from mailbot.sources.imap import ImapMailbox, server_folder
from mailbot.sources.maildir import MaildirMailbox, deliver, folder_path
from tests.mailfactory import CLIENTS, build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import docx_bytes, pdf_bytes
from tests.servers.common import free_port
from tests.servers.dovecot import Dovecot

CST = timezone(timedelta(hours=8))
CEST = timezone(timedelta(hours=2))

# July 2021, in the zones the mail came from, deliberately not in arrival order.
RECEIVED = [
    datetime(2021, 7, 14, 9, 30, 0, tzinfo=CST),
    datetime(2021, 7, 1, 23, 59, 59, tzinfo=UTC),
    datetime(2021, 7, 31, 0, 0, 1, tzinfo=CEST),
    datetime(2021, 7, 20, 17, 45, 12, tzinfo=CST),
    datetime(2021, 7, 5, 8, 0, 0, tzinfo=CST),
]


def sample(n: int) -> bytes:
    return build_mail(
        CLIENTS[n % len(CLIENTS)],
        subject=f"合作专项建议书：研究所{n}+张喆",
        attachments=[Att(f"建议书{n}.docx", docx_bytes()), Att(f"建议书{n}.pdf", pdf_bytes())],
    )


# ------------------------------------------------------------------ fixtures


def empty(server: Dovecot) -> None:
    # Some tests stop or restart the server, which the whole session shares.
    if not server.running:
        server.start()
    with server.client() as client:
        names = [name for _flags, _sep, name in client.list_folders()]
        for name in sorted(names, key=len, reverse=True):
            # Dovecot drops a \Noselect parent with its last child, so Dovecot.clear(),
            # which deletes the parent afterwards, fails on "mailbot.accepted".
            if name.upper() != "INBOX" and client.folder_exists(name):
                client.delete_folder(name)
    server.clear()


@pytest.fixture
def server(dovecot: Dovecot) -> Iterator[Dovecot]:
    """The session's Dovecot, running and empty before and after the test."""
    empty(dovecot)
    yield dovecot
    empty(dovecot)


def settings(server: Dovecot, **changes: Any) -> ImapSettings:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "plain",
        "username": server.user,
        "batch_size": 2,
        "timeout": 10.0,
    }
    values.update(changes)
    return ImapSettings(**values)


@pytest.fixture
def imap(server: Dovecot) -> Iterator[ImapMailbox]:
    mailbox = ImapMailbox(settings(server), server.password)
    yield mailbox
    mailbox.close()


@pytest.fixture
def open_imap(server: Dovecot) -> Iterator[Callable[..., ImapMailbox]]:
    """Make ImapMailboxes with changed settings; all are closed after the test."""
    opened: list[ImapMailbox] = []

    def make(password: str | None = None, **changes: Any) -> ImapMailbox:
        mailbox = ImapMailbox(settings(server, **changes), password or server.password)
        opened.append(mailbox)
        return mailbox

    yield make
    for mailbox in opened:
        mailbox.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def append_all(server: Dovecot, folder: str = "INBOX", count: int = 3) -> list[tuple[int, bytes]]:
    mails = [sample(n) for n in range(count)]
    return [(server.append(folder, raw, RECEIVED[n]), raw) for n, raw in enumerate(mails)]


def flags_of(server: Dovecot, folder: str) -> dict[int, tuple[bytes, ...]]:
    with server.client() as client:
        client.select_folder(folder, readonly=True)
        found: dict[int, tuple[bytes, ...]] = client.get_flags(client.search("ALL"))
        return found


def drain(batches: Iterator[list[Fetched]]) -> list[Fetched]:
    return [item for batch in batches for item in batch]


# ------------------------------------------------------------------- IMAP: fetch


def test_name_and_folder_names(imap: ImapMailbox, server: Dovecot) -> None:
    assert imap.name == f"imap://{server.user}@{server.host}:{server.port}"
    assert imap.folders() == ["INBOX"]
    assert server_folder("mailbot/accepted", ".") == "mailbot.accepted"
    assert server_folder("mailbot/accepted", "/") == "mailbot/accepted"
    assert server_folder("mailbot/accepted", ".", "INBOX.") == "INBOX.mailbot.accepted"
    assert server_folder("INBOX/calls", ".", "INBOX.") == "INBOX.calls"
    assert server_folder("inbox", ".", "INBOX.") == "INBOX"


def test_fetch_yields_new_mail_in_batches_unread(imap: ImapMailbox, server: Dovecot) -> None:
    mails = append_all(server, count=5)
    validity = imap.uidvalidity("INBOX")
    assert isinstance(validity, int)

    batches = list(imap.fetch_new("INBOX", Cursor()))

    assert [len(b) for b in batches] == [2, 2, 1]
    items = [item for batch in batches for item in batch]
    assert [(i.uid, i.raw) for i in items] == mails
    for item, received in zip(items, RECEIVED, strict=True):
        assert item.received_at == received
        assert item.received_at.utcoffset() == timedelta(0)
        assert item.received_at.year == 2021
        assert item.received_at.month == 7
        assert item.folder == "INBOX"
        assert item.uidvalidity == validity
        assert item.location == f"{validity}:{item.uid}"
    assert all(b"\\Seen" not in flags for flags in flags_of(server, "INBOX").values())


def test_cursor_yields_only_newer_mail(imap: ImapMailbox, server: Dovecot) -> None:
    (first, _), (second, _), (third, _) = append_all(server)
    validity = imap.uidvalidity("INBOX")

    assert [i.uid for i in drain(imap.fetch_new("INBOX", Cursor(validity, second)))] == [third]
    # "UID n:*" matches the newest mail even when n is past it.
    assert drain(imap.fetch_new("INBOX", Cursor(validity, third))) == []
    assert drain(imap.fetch_new("INBOX", Cursor(validity, third + 10))) == []
    assert [i.uid for i in drain(imap.fetch_new("INBOX", Cursor(validity, 0)))] == [
        first,
        second,
        third,
    ]


def test_empty_folder_yields_nothing(imap: ImapMailbox) -> None:
    validity = imap.uidvalidity("INBOX")
    assert list(imap.fetch_new("INBOX", Cursor())) == []
    assert list(imap.fetch_new("INBOX", Cursor(validity, 5))) == []


def test_before_is_called_once_ahead_of_the_first_fetch_and_not_without_new_mail(
    imap: ImapMailbox, server: Dovecot
) -> None:
    validity = imap.uidvalidity("INBOX")
    calls: list[str] = []

    def before(mails: int) -> None:
        calls.append(f"before {mails}")

    assert drain(imap.fetch_new("INBOX", Cursor(), before)) == []
    assert calls == []
    append_all(server, count=3)
    batches = imap.fetch_new("INBOX", Cursor(validity, 0), before)
    first = next(batches)
    assert calls == ["before 3"]
    calls.append(f"batch of {len(first)}")
    rest = [len(batch) for batch in batches]
    assert calls == ["before 3", "batch of 2"]
    assert rest == [1]
    last = first[-1].uid
    assert last is not None
    assert drain(imap.fetch_new("INBOX", Cursor(validity, last + 1), before)) == []
    assert calls == ["before 3", "batch of 2"]


def test_new_uidvalidity_yields_everything_again(
    server: Dovecot, open_imap: Callable[..., ImapMailbox]
) -> None:
    # A folder with "/" in its name, which Dovecot's Maildir spells "calls.anso2021".
    folder = "calls/anso2021"
    server.create_folder("calls.anso2021")
    mails = append_all(server, "calls.anso2021", count=2)
    imap = open_imap(folders=[folder])
    old = imap.uidvalidity(folder)
    assert old is not None
    cursor = Cursor(old, mails[-1][0])
    assert drain(imap.fetch_new(folder, cursor)) == []

    with server.client() as client:
        client.delete_folder("calls.anso2021")
        client.create_folder("calls.anso2021")
    again = append_all(server, "calls.anso2021", count=2)

    new = imap.uidvalidity(folder)
    assert new is not None
    assert new != old
    items = drain(imap.fetch_new(folder, cursor))
    assert [(i.uid, i.raw) for i in items] == again
    assert {i.uidvalidity for i in items} == {new}
    assert all(i.folder == folder for i in items)


def test_mail_expunged_between_batches_is_skipped(
    server: Dovecot, open_imap: Callable[..., ImapMailbox]
) -> None:
    imap = open_imap(batch_size=1)
    (first, _), (second, _), (third, _) = append_all(server)
    batches = imap.fetch_new("INBOX", Cursor())
    assert [i.uid for i in next(batches)] == [first]

    with server.client() as client:
        client.select_folder("INBOX")
        client.delete_messages([second])
        client.uid_expunge([second])
    # The intake settles each batch before fetching the next one.
    imap.settle("INBOX", [(f"{imap.uidvalidity('INBOX')}:{first}", Flag())])

    assert [i.uid for i in drain(batches)] == [third]


# ------------------------------------------------------------------ IMAP: settle


def test_settle_moves_into_new_folders_and_flags(imap: ImapMailbox, server: Dovecot) -> None:
    mails = append_all(server, count=4)
    items = drain(imap.fetch_new("INBOX", Cursor()))
    targets: list[Filing] = [
        MoveTo("mailbot/accepted"),
        MoveTo("mailbot/needs-correction"),
        Flag(),
        MoveTo("mailbot/accepted"),
    ]

    imap.settle("INBOX", [(i.location, t) for i, t in zip(items, targets, strict=True)])

    with server.client() as client:
        listed = {name for _flags, _sep, name in client.list_folders()}
        subscribed = {name for _flags, _sep, name in client.list_sub_folders()}
    # Dovecot's Maildir layout uses "." as hierarchy delimiter.
    assert {"mailbot.accepted", "mailbot.needs-correction"} <= listed
    assert {"mailbot.accepted", "mailbot.needs-correction"} <= subscribed
    assert server.fetch_all("mailbot.accepted") == [mails[0][1], mails[3][1]]
    assert server.fetch_all("mailbot.needs-correction") == [mails[1][1]]
    assert server.fetch_all("INBOX") == [mails[2][1]]
    (flags,) = flags_of(server, "INBOX").values()
    assert b"$MailbotDone" in flags
    assert b"\\Seen" not in flags
    assert all(b"\\Seen" not in f for f in flags_of(server, "mailbot.accepted").values())

    # Into a folder that now exists, and a mail already gone from INBOX.
    more = server.append("INBOX", sample(9), RECEIVED[4])
    validity = imap.uidvalidity("INBOX")
    imap.settle(
        "INBOX",
        [(f"{validity}:{more}", MoveTo("mailbot/accepted")), (items[0].location, MoveTo("x"))],
    )
    assert len(server.fetch_all("mailbot.accepted")) == 3


def test_settle_with_stale_uidvalidity_does_nothing(imap: ImapMailbox, server: Dovecot) -> None:
    [(uid, raw)] = append_all(server, count=1)
    validity = imap.uidvalidity("INBOX")
    assert validity is not None

    imap.settle(
        "INBOX",
        [(f"{validity + 1}:{uid}", MoveTo("mailbot/accepted")), (f"{validity - 1}:{uid}", Flag())],
    )

    with server.client() as client:
        assert not client.folder_exists("mailbot.accepted")
    assert server.fetch_all("INBOX") == [raw]
    assert all(b"$MailbotDone" not in f for f in flags_of(server, "INBOX").values())


def test_settle_rejects_a_location_that_is_not_imap(imap: ImapMailbox) -> None:
    with pytest.raises(ValueError, match="UIDVALIDITY:UID"):
        imap.settle("INBOX", [("1626000000.M1P2Q3.host", Flag())])


# -------------------------------------------------------------------- IMAP: wait


def test_wait_wakes_on_append_during_idle(
    imap: ImapMailbox, server: Dovecot, pool: ThreadPoolExecutor
) -> None:
    imap.uidvalidity("INBOX")  # connected, so the IDLE starts at once
    stop = threading.Event()
    started = time.monotonic()
    woke = pool.submit(imap.wait, stop, 10.0)
    time.sleep(0.5)
    server.append("INBOX", sample(1), RECEIVED[0])

    assert woke.result(timeout=5) is True
    assert time.monotonic() - started < 3


def test_wait_wakes_for_mail_that_came_before_the_idle(imap: ImapMailbox, server: Dovecot) -> None:
    append_all(server, count=1)
    drain(imap.fetch_new("INBOX", Cursor()))
    server.append("INBOX", sample(7), RECEIVED[1])

    started = time.monotonic()
    assert imap.wait(threading.Event(), 5.0) is True
    assert time.monotonic() - started < 1


def test_wait_times_out_and_renews_the_idle(
    open_imap: Callable[..., ImapMailbox], caplog: pytest.LogCaptureFixture
) -> None:
    imap = open_imap(idle_renew=0.5)
    with caplog.at_level(logging.DEBUG, logger="imapclient"):
        started = time.monotonic()
        assert imap.wait(threading.Event(), 1.6) is False
        elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 3
    # imapclient logs each DONE it sends: one per IDLE, renewed every 0.5 s.
    assert sum(r.getMessage() == "< DONE" for r in caplog.records) >= 3


def test_wait_returns_promptly_on_stop(imap: ImapMailbox, pool: ThreadPoolExecutor) -> None:
    stop = threading.Event()
    started = time.monotonic()
    woke = pool.submit(imap.wait, stop, 30.0)
    time.sleep(0.3)
    stop.set()
    assert woke.result(timeout=5) is False
    assert time.monotonic() - started < 1.5
    assert imap.wait(stop, 30.0) is False


def test_wait_without_idle_sleeps(open_imap: Callable[..., ImapMailbox]) -> None:
    imap = open_imap(idle=False)
    stop = threading.Event()
    started = time.monotonic()
    assert imap.wait(stop, 0.4) is False
    assert 0.35 <= time.monotonic() - started < 2


# --------------------------------------------------------------- IMAP: failures


def test_restart_raises_source_error_once_then_recovers(imap: ImapMailbox, server: Dovecot) -> None:
    [(uid, raw)] = append_all(server, count=1)
    validity = imap.uidvalidity("INBOX")
    server.restart()

    with pytest.raises(SourceError) as caught:
        drain(imap.fetch_new("INBOX", Cursor()))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(imap.name)

    assert imap.uidvalidity("INBOX") == validity
    assert [(i.uid, i.raw) for i in drain(imap.fetch_new("INBOX", Cursor()))] == [(uid, raw)]


def test_restart_during_idle(imap: ImapMailbox, server: Dovecot, pool: ThreadPoolExecutor) -> None:
    imap.uidvalidity("INBOX")
    stop = threading.Event()
    started = time.monotonic()
    woke: Future[bool] = pool.submit(imap.wait, stop, 20.0)
    time.sleep(0.3)
    server.restart()

    with pytest.raises(SourceError):
        woke.result(timeout=5)
    assert time.monotonic() - started < 3

    imap.uidvalidity("INBOX")  # reconnected, so the IDLE starts at once
    woke = pool.submit(imap.wait, stop, 10.0)
    time.sleep(0.5)
    server.append("INBOX", sample(2), RECEIVED[2])
    assert woke.result(timeout=5) is True


def test_unreachable_server_tls_mismatch_and_wrong_password(
    server: Dovecot, open_imap: Callable[..., ImapMailbox]
) -> None:
    with pytest.raises(SourceError, match="refused"):
        open_imap(port=free_port()).uidvalidity("INBOX")
    # The test server speaks no TLS: both secure modes must fail, not fall back.
    for security in ("ssl", "starttls"):
        with pytest.raises(SourceError):
            open_imap(security=security).uidvalidity("INBOX")
    with pytest.raises(SourceError, match="AUTHENTICATIONFAILED"):
        open_imap("wrong-" + server.password).wait(threading.Event(), 1.0)


def test_close_after_the_server_went_away(server: Dovecot) -> None:
    imap = ImapMailbox(settings(server), server.password)
    imap.uidvalidity("INBOX")
    server.stop()
    imap.close()  # quietly
    imap.close()
    server.start()


# ------------------------------------------------------------------------ Maildir


def mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def test_maildir_deliver_and_fetch(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    mails = [sample(n) for n in range(3)]
    keys = [deliver(root, raw, RECEIVED[n]) for n, raw in enumerate(mails)]
    assert all((root / "new" / key).is_file() for key in keys)
    assert {p.name for p in root.iterdir()} == {"new", "cur", "tmp"}
    assert not any((root / "tmp").iterdir())
    assert mtime(root / "new" / keys[0]) == RECEIVED[0]

    box = MaildirMailbox(root)
    assert box.name == f"maildir:{root}"
    assert box.folders() == ["INBOX"]
    assert box.uidvalidity("INBOX") is None
    items = drain(box.fetch_new("INBOX", Cursor()))

    # Oldest first: July 1st, 14th, 31st.
    order = [1, 0, 2]
    assert [i.location for i in items] == [keys[n] for n in order]
    assert [i.raw for i in items] == [mails[n] for n in order]
    assert [i.received_at for i in items] == [RECEIVED[n] for n in order]
    assert all(i.received_at.utcoffset() == timedelta(0) for i in items)
    assert all(i.uid is None and i.uidvalidity is None for i in items)


def test_maildir_batches_and_files_that_move_or_vanish(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    start = datetime(2021, 7, 1, tzinfo=UTC)
    keys = [
        deliver(root, b"Subject: %d\r\n\r\n." % n, start + timedelta(minutes=n)) for n in range(53)
    ]
    box = MaildirMailbox(root)

    batches = box.fetch_new("INBOX", Cursor())
    assert [i.location for i in next(batches)] == keys[:50]
    # Meanwhile a mail client reads one mail and deletes another.
    os.rename(root / "new" / keys[50], root / "cur" / f"{keys[50]}:2,S")
    (root / "new" / keys[51]).unlink()
    rest = drain(batches)
    assert [(i.location, i.raw) for i in rest] == [
        (keys[50], b"Subject: 50\r\n\r\n."),
        (keys[52], b"Subject: 52\r\n\r\n."),
    ]


def test_a_maildir_backlog_of_scans_is_read_a_few_megabytes_at_a_time(tmp_path: Path) -> None:
    """A fetch holds at most BATCH_BYTES of mail; a mail bigger than that comes alone."""
    from mailbot.sources.maildir import BATCH_BYTES

    root = tmp_path / "Maildir"
    start = datetime(2021, 7, 30, 20, 0, tzinfo=UTC)
    sizes = [6, 6, 6, 20, 1, 1]
    keys = [
        deliver(root, b"Subject: x\r\n\r\n" + b"x" * (mb * 2**20), start + timedelta(minutes=n))
        for n, mb in enumerate(sizes)
    ]
    batches = list(MaildirMailbox(root).fetch_new("INBOX", Cursor()))
    assert [[i.location for i in batch] for batch in batches] == [
        keys[0:2],
        keys[2:3],
        keys[3:4],
        keys[4:6],
    ]
    assert all(sum(len(i.raw) for i in b) <= BATCH_BYTES or len(b) == 1 for b in batches)


def test_maildir_settle_moves_and_flags(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    mails = [sample(n) for n in range(3)]
    keys = [deliver(root, raw, RECEIVED[n]) for n, raw in enumerate(mails)]
    box = MaildirMailbox(root)

    box.settle(
        "INBOX",
        [
            (keys[0], MoveTo("mailbot/accepted")),
            (keys[1], Flag()),
            ("no-such-key", MoveTo("mailbot/late")),
        ],
    )

    accepted = root / ".mailbot.accepted"
    assert {p.name for p in accepted.iterdir()} == {"cur", "new", "tmp", "maildirfolder"}
    moved = accepted / "cur" / f"{keys[0]}:2,S"
    assert moved.read_bytes() == mails[0]
    assert mtime(moved) == RECEIVED[0]
    assert mtime(root / "cur" / f"{keys[1]}:2,S") == RECEIVED[1]
    assert (root / "new" / keys[2]).is_file()
    assert not (root / ".mailbot.late").exists()

    items = drain(box.fetch_new("INBOX", Cursor()))
    assert sorted(i.location for i in items) == sorted(keys[1:])
    assert {i.location: i.received_at for i in items}[keys[1]] == RECEIVED[1]

    # Settling twice, with flags another client set in the meantime, keeps them.
    os.rename(root / "cur" / f"{keys[1]}:2,S", root / "cur" / f"{keys[1]}:2,FS")
    box.settle("INBOX", [(keys[1], Flag()), (keys[2], MoveTo("mailbot/needs-correction"))])
    assert (root / "cur" / f"{keys[1]}:2,FS").is_file()
    assert (root / ".mailbot.needs-correction" / "cur" / f"{keys[2]}:2,S").is_file()


def test_maildir_deliver_into_a_subfolder_and_bad_names(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    key = deliver(root, b"Subject: x\r\n\r\n.", RECEIVED[0], folder="mailbot/late")
    assert (root / ".mailbot.late" / "new" / key).is_file()
    assert (root / "new").is_dir()
    with pytest.raises(ValueError, match="aware"):
        deliver(root, b"x", datetime(2021, 7, 1))
    for bad in ("../escape", "a//b", ".hidden", "a.b", ""):
        with pytest.raises(SourceError):
            folder_path(root, bad)
    assert drain(MaildirMailbox(tmp_path / "nothing-yet").fetch_new("INBOX", Cursor())) == []
    calls: list[int] = []
    empty = MaildirMailbox(tmp_path / "nothing-yet")
    assert drain(empty.fetch_new("INBOX", Cursor(), calls.append)) == []
    assert calls == []
    items = drain(MaildirMailbox(root).fetch_new("mailbot/late", Cursor(), calls.append))
    assert len(items) == 1
    assert calls == [1]


def test_maildir_wait(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    box = MaildirMailbox(tmp_path)
    stop = threading.Event()
    started = time.monotonic()
    assert box.wait(stop, 0.3) is False
    assert 0.25 <= time.monotonic() - started < 1.5

    woke = pool.submit(box.wait, stop, 30.0)
    time.sleep(0.2)
    stop.set()
    assert woke.result(timeout=2) is False
    box.close()


def test_maildir_layout_is_the_one_dovecot_reads(server: Dovecot) -> None:
    with server.client():
        pass  # the first login creates the user's Maildir
    root = server.mail_dir
    inbox, late = sample(1), sample(2)
    deliver(root, inbox, RECEIVED[0])
    deliver(root, late, RECEIVED[1], folder="mailbot/late")
    owner = root.stat()
    if os.geteuid() == 0:
        # Dovecot serves the mail as its own user and must be able to write beside it.
        for path in [root, *root.rglob("*")]:
            os.chown(path, owner.st_uid, owner.st_gid)

    assert server.fetch_all("INBOX") == [inbox]
    assert server.fetch_all("mailbot.late") == [late]
    with server.client() as client:
        client.select_folder("mailbot.late", readonly=True)
        [(_uid, data)] = client.fetch(client.search("ALL"), ["INTERNALDATE"]).items()
    assert data[b"INTERNALDATE"] == RECEIVED[1]
