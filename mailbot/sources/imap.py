"""The IMAP source: a mailbox on a server, read with imapclient, filed with MOVE or flags."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imapclient import DELETED, SEEN, IMAPClient  # type: ignore[import-untyped]
from imapclient.exceptions import (  # type: ignore[import-untyped]
    IMAPClientAbortError,
    IMAPClientError,
    LoginError,
)

from mailbot import __version__
from mailbot.config import ImapSettings
from mailbot.net.oauth2 import OAuth2Error, SaslAnswer, TokenSource
from mailbot.net.tls import certificate_hint, client_context
from mailbot.sources.base import Cursor, Fetched, Filing, Flag, SourceError

log = logging.getLogger(__name__)

# How often a wait in IDLE looks at `stop`: a stop request is honoured within this.
IDLE_STEP = 0.5

_FETCH_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE"]

# A fetch brings at most this much mail at once (and at most imap.batch_size mails).
BATCH_BYTES = 16 * 1024 * 1024


def server_folder(name: str, delimiter: str | None, prefix: str = "") -> str:
    """The server's name for a folder written with "/" between levels.

    A level that itself holds the server's delimiter becomes two levels there.
    """
    if name.upper() == "INBOX":
        return "INBOX"
    server = name.replace("/", delimiter) if delimiter else name
    # Servers such as Courier keep every folder under "INBOX."; CREATE elsewhere fails.
    if prefix and not server.upper().startswith(prefix.upper()):
        server = prefix + server
    return server


def parse_location(location: str) -> tuple[int, int]:
    """UIDVALIDITY and UID from a location written by fetch_new."""
    validity, sep, uid = location.partition(":")
    if not sep or not validity.isdigit() or not uid.isdigit():
        raise ValueError(f"not an IMAP location (UIDVALIDITY:UID): {location!r}")
    return int(validity), int(uid)


def _error_text(exc: BaseException) -> str:
    """What the error says, on one line; its class's name when it says nothing."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def quiet_imaplib(client: Any) -> None:
    """Switch off imaplib's tracing unless the "imapclient.imaplib" logger shows debugging.

    imapclient sets imaplib's ``debug`` to 5 and sends its trace to that logger;
    at that level imaplib formats the repr of every response before the logger
    can drop it: each fetched mail, and then the whole batch, megabytes each.
    That made fetching 6-8 times slower and held the batch's size again in
    memory (bench/, issue 7). imaplib's ``debug`` is public; imapclient gives no
    other way to reach it than its ``_imap``.
    """
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def _aware_utc(value: datetime) -> datetime:
    # With normalise_times off imapclient keeps the server's zone; a naive value
    # would only come from a changed default and then means local time.
    return value.astimezone(UTC)


class ImapMailbox:
    """An IMAP account: one connection, opened when first needed and reopened after a drop."""

    def __init__(
        self,
        settings: ImapSettings,
        credential: str | TokenSource,
        *,
        flag: str = "$MailbotDone",
    ):
        """``credential`` is the password, or where OAuth2 access tokens come from."""
        self.settings = settings
        self.flag = flag
        self.name = f"imap://{settings.username}@{settings.host}:{settings.port}"
        self._credential = credential
        self._client: Any = None
        self._selected: tuple[str, int] | None = None  # (folder, UIDVALIDITY)
        self._layout: tuple[str | None, str] | None = None  # (delimiter, personal prefix)
        self._existing: set[str] = set()
        # Per folder, the UIDVALIDITY and UIDNEXT the last fetch_new covered: mail
        # arriving before the IDLE starts raises no EXISTS, but shows in UIDNEXT.
        self._covered: dict[str, tuple[int, int]] = {}

    # -- the Mailbox protocol -------------------------------------------------

    def folders(self) -> list[str]:
        return list(self.settings.folders) or ["INBOX"]

    def uidvalidity(self, folder: str) -> int | None:
        with self._talking(f"opening {folder}"):
            client = self._connect()
            selected = self._selected
            if selected is not None and selected[0] == folder and self._noop_clean(client):
                return selected[1]
            return self._select(self._connect(), folder, readonly=True)

    def fetch_new(
        self, folder: str, cursor: Cursor, before: Callable[[int], None] | None = None
    ) -> Iterator[list[Fetched]]:
        with self._talking(f"searching {folder}"):
            client = self._connect()
            validity, uidnext = self._refresh(client, folder)
            if cursor.uidvalidity == validity:
                # "UID n:*" always matches the newest mail, even when its UID is below n.
                found = client.search(["UID", f"{cursor.last_uid + 1}:*"])
                uids = sorted(int(uid) for uid in found if int(uid) > cursor.last_uid)
            else:
                uids = sorted(int(uid) for uid in client.search("ALL"))
            self._covered[folder] = (validity, max(uidnext, uids[-1] + 1 if uids else 0))
        if uids and before is not None:
            before(len(uids))
        size = self.settings.batch_size
        for start in range(0, len(uids), size):
            chunk = uids[start : start + size]
            with self._talking(f"sizing mail in {folder}"):
                client = self._connect()
                if not self._still_selected(client, folder, validity):
                    return
                runs = self._by_bytes(client, chunk)
            for run in runs:
                with self._talking(f"fetching from {folder}"):
                    client = self._connect()
                    if not self._still_selected(client, folder, validity):
                        return
                    batch = self._fetch(client, folder, validity, run)
                if batch:
                    yield batch

    def settle(self, folder: str, items: list[tuple[str, Filing]]) -> None:
        if not items:
            return
        wanted = [(*parse_location(location), filing) for location, filing in items]
        with self._talking(f"filing mail in {folder}"):
            client = self._connect()
            validity = self._select(client, folder, readonly=False)
            by_target: dict[Filing, list[int]] = {}
            for item_validity, uid, filing in wanted:
                if item_validity == validity:
                    by_target.setdefault(filing, []).append(uid)
                else:
                    log.info(
                        "%s %s: UID %s is from UIDVALIDITY %s, now %s; left in place",
                        self.name,
                        folder,
                        uid,
                        item_validity,
                        validity,
                    )
            source = self._server_folder(client, folder)
            for filing, uids in by_target.items():
                # A move into the folder itself would give the mail a new UID, and it
                # would come back as new: flag it instead.
                if isinstance(filing, Flag) or self._server_folder(client, filing.folder) == source:
                    client.add_flags(uids, [self.flag], silent=True)
                else:
                    self._move(client, uids, filing.folder)

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if stop.is_set():
            return False
        if self.settings.idle:
            folder = self.folders()[0]
            with self._talking(f"waiting for mail in {folder}"):
                client = self._connect()
                if client.has_capability("IDLE"):
                    if self._news_since_fetch(client, folder):
                        return True
                    return self._idle(client, stop, deadline)
        stop.wait(max(0.0, deadline - time.monotonic()))
        return False

    def close(self) -> None:
        client = self._client
        self._forget()
        if client is None:
            return
        try:
            client.logout()
        except (OSError, IMAPClientError) as exc:
            log.debug("%s: logout failed (%s); closing the socket", self.name, _error_text(exc))
            with suppress(OSError):
                client.shutdown()

    # -- the connection -------------------------------------------------------

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        """Turn a failed exchange into SourceError and drop the connection it broke."""
        try:
            yield
        except (OSError, IMAPClientError) as exc:
            self._drop()
            hint = certificate_hint(exc, "source.imap")
            raise SourceError(f"{self.name}: {doing}: {_error_text(exc)}{hint}") from exc
        except BaseException:
            # Whatever else happened, the connection may be mid-command or in IDLE.
            self._drop()
            raise

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        s = self.settings
        context = client_context(s, self.name) if s.security != "plain" else None
        client = IMAPClient(
            s.host, port=s.port, ssl=s.security == "ssl", ssl_context=context, timeout=s.timeout
        )
        quiet_imaplib(client)
        try:
            if s.security == "starttls":
                client.starttls(context)
            self._login(client)
            self._identify(client)
        except BaseException:
            with suppress(OSError):
                client.shutdown()
            raise
        # Keep INTERNALDATE's zone instead of a naive local time.
        client.normalise_times = False
        self._client = client
        return client

    def _login(self, client: Any) -> None:
        credential = self._credential
        if isinstance(credential, str):
            client.login(self.settings.username, credential)
            return
        mechanism = self.settings.auth.upper()
        if not client.has_capability(f"AUTH={mechanism}"):
            offered = " ".join(c.decode() for c in client.capabilities() if c.startswith(b"AUTH="))
            raise SourceError(
                f"{self.name} does not offer {mechanism} login (source.imap.auth); "
                f"it offers {offered or 'no SASL mechanism'}"
            )
        try:
            token = credential.token()
            try:
                self._sasl(client, token)
            except LoginError:
                # Expired or revoked early: one new token, then the refusal stands.
                log.info("%s refused the access token; getting a new one", self.name)
                self._sasl(client, credential.renew(token))
        except OAuth2Error as exc:
            raise SourceError(f"{self.name}: {exc}") from None
        except LoginError as exc:
            raise SourceError(
                f"{self.name} refused the OAuth2 login of {self.settings.username!r} even "
                f"with a new access token ({credential.mask(_error_text(exc))}): check that "
                "the account may use IMAP and that source.imap.oauth2.scope grants it"
            ) from None

    def _sasl(self, client: Any, token: str) -> None:
        mechanism = self.settings.auth.upper()
        client.sasl_login(mechanism, SaslAnswer(mechanism, self.settings.username, token))

    def _identify(self, client: Any) -> None:
        """Say who we are (RFC 2971): Coremail and NetEase refuse SELECT until told.

        A server that refuses our ID gets no second try; should it then refuse
        SELECT too, that refusal is the error the operator sees.
        """
        mode = self.settings.send_id
        if mode == "never" or (mode == "auto" and not client.has_capability("ID")):
            return
        try:
            if client.has_capability("ID"):
                server = client.id_({"name": "mailbot", "version": __version__})
                log.debug("%s: ID sent; the server is %s", self.name, server)
                return
            # imapclient's id_() insists on the capability, which "always" does without;
            # imaplib's xatom sends the command as it is (reached as quiet_imaplib says).
            typ, data = client._imap.xatom("ID", f'("name" "mailbot" "version" "{__version__}")')
            if typ != "OK":
                raise IMAPClientError(f"ID command error: {typ} {data}")
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            log.warning("%s refused the ID command (%s)", self.name, _error_text(exc))

    def _forget(self) -> None:
        self._client = None
        self._selected = None
        self._layout = None
        self._existing = set()

    def _drop(self) -> None:
        client = self._client
        self._forget()
        if client is not None:
            # The connection is already broken; closing it can only fail the same way.
            with suppress(OSError, IMAPClientError):
                client.shutdown()

    # -- folders --------------------------------------------------------------

    def _server_folder(self, client: Any, folder: str) -> str:
        if self._layout is None:
            delimiter: str | None = None
            prefix = ""
            if client.has_capability("NAMESPACE"):
                personal = client.namespace().personal
                if personal:
                    prefix, delimiter = personal[0]
            else:
                # LIST "" "" answers with the hierarchy delimiter alone.
                for _flags, sep, _name in client.list_folders("", ""):
                    delimiter = sep.decode() if isinstance(sep, bytes) else sep
            self._layout = (delimiter, prefix or "")
        return server_folder(folder, *self._layout)

    def _refresh(self, client: Any, folder: str) -> tuple[int, int]:
        """The folder selected and up to date: its UIDVALIDITY and the UIDNEXT last seen.

        A folder still selected since the last look is only brought up to date
        (NOOP): SELECT costs the server time in proportion to the folder, and a
        poll that finds nothing new must cost the same on 10,000 mails as on 100.
        The UIDNEXT is then the one this connection last covered.
        """
        covered = self._covered.get(folder)
        still = covered is not None and self._selected == (folder, covered[0])
        # NOOP lets the server take in what came meanwhile: SEARCH sees it then.
        if covered is not None and still and self._noop_clean(client):
            return covered
        return self._select_status(self._connect(), folder, readonly=True)

    def _noop_clean(self, client: Any) -> bool:
        """NOOP on the selected folder; False, with the connection dropped, when the server
        finds fault with it (the folder was deleted or replaced meanwhile)."""
        try:
            _text, responses = client.noop()
        except IMAPClientAbortError:
            self._drop()
            return False
        if any(isinstance(r, tuple) and r and r[0] in (b"NO", b"BAD", b"BYE") for r in responses):
            self._drop()
            return False
        return True

    def _news_since_fetch(self, client: Any, folder: str) -> bool:
        """Whether mail came after fetch_new last looked: an IDLE begun now would not say."""
        covered = self._covered.get(folder)
        if covered is not None and self._selected == (folder, covered[0]):
            if self._noop_clean(client):
                first = max(covered[1], 1)
                return any(int(uid) >= first for uid in client.search(["UID", f"{first}:*"]))
            client = self._connect()
        now = self._select_status(client, folder, readonly=True)
        return covered is not None and (now[0] != covered[0] or now[1] > covered[1])

    def _select(self, client: Any, folder: str, *, readonly: bool) -> int:
        return self._select_status(client, folder, readonly=readonly)[0]

    def _select_status(self, client: Any, folder: str, *, readonly: bool) -> tuple[int, int]:
        """Select a folder; return its UIDVALIDITY and UIDNEXT (0 where not told)."""
        self._selected = None
        response = client.select_folder(self._server_folder(client, folder), readonly=readonly)
        validity = int(response[b"UIDVALIDITY"])
        self._selected = (folder, validity)
        return validity, int(response.get(b"UIDNEXT", 0))

    def _ensure_folder(self, client: Any, folder: str) -> str:
        name = self._server_folder(client, folder)
        if name in self._existing or client.folder_exists(name):
            self._existing.add(name)
            return name
        try:
            client.create_folder(name)
        except IMAPClientAbortError:
            raise
        except IMAPClientError:
            # Another client may have created it meanwhile; only a real refusal counts.
            if not client.folder_exists(name):
                raise
        else:
            client.subscribe_folder(name)
        self._existing.add(name)
        return name

    def _move(self, client: Any, uids: list[int], folder: str) -> None:
        name = self._ensure_folder(client, folder)
        if client.has_capability("MOVE"):
            client.move(uids, name)
            return
        client.copy(uids, name)
        client.add_flags(uids, [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            # Without UIDPLUS, EXPUNGE also removes mail someone else marked \Deleted.
            client.expunge()

    # -- fetching -------------------------------------------------------------

    def _still_selected(self, client: Any, folder: str, validity: int) -> bool:
        """Select the folder again if need be; False when its UIDVALIDITY changed meanwhile."""
        # The caller may have used the connection between batches (settle,
        # another folder, a reconnect); the UIDs only mean something here.
        if self._selected == (folder, validity):
            return True
        if self._select(client, folder, readonly=True) == validity:
            return True
        log.info("%s %s: UIDVALIDITY changed during a fetch", self.name, folder)
        return False

    def _by_bytes(self, client: Any, uids: list[int]) -> list[list[int]]:
        """The UIDs in runs of at most BATCH_BYTES of mail; a bigger mail makes a run alone.

        A batch stays in memory while its mails are judged one by one, so its
        bytes, not its count, bound the daemon's memory in a backlog of scans.
        """
        sizes = client.fetch(uids, [b"RFC822.SIZE"])
        runs: list[list[int]] = [[]]
        held = 0
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if runs[-1] and held + size > BATCH_BYTES:
                runs.append([])
                held = 0
            runs[-1].append(uid)
            held += size
        return runs

    def _fetch(self, client: Any, folder: str, validity: int, uids: list[int]) -> list[Fetched]:
        response = client.fetch(uids, _FETCH_ITEMS)
        batch: list[Fetched] = []
        for uid in uids:
            data = response.get(uid, {})
            # BODY.PEEK[] is answered as BODY[]; a mail expunged since the search is absent.
            raw = data.get(b"BODY[]")
            received = data.get(b"INTERNALDATE")
            if not isinstance(raw, bytes) or not isinstance(received, datetime):
                log.info("%s %s: UID %s vanished before it was fetched", self.name, folder, uid)
                continue
            batch.append(
                Fetched(
                    folder=folder,
                    location=f"{validity}:{uid}",
                    raw=raw,
                    received_at=_aware_utc(received),
                    uid=uid,
                    uidvalidity=validity,
                )
            )
        return batch

    # -- waiting --------------------------------------------------------------

    def _idle(self, client: Any, stop: threading.Event, deadline: float) -> bool:
        while not stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                return False
            # Servers may end an IDLE after 30 minutes; renew well before.
            renew_at = min(deadline, now + self.settings.idle_renew)
            client.idle()
            news = self._idle_until(client, stop, renew_at)
            _text, responses = client.idle_done()
            if news or _announces_news(responses):
                return True
        return False

    def _idle_until(self, client: Any, stop: threading.Event, until: float) -> bool:
        """Watch one IDLE; False when it should end without news (time, stop, or a check)."""
        while not stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return False
            step = min(left, IDLE_STEP)
            started = time.monotonic()
            responses = client.idle_check(timeout=step)
            if _announces_news(responses):
                return True
            if not responses and time.monotonic() - started < step / 2:
                # idle_check swallows an EOF and returns nothing at once; ending
                # the IDLE makes a dead connection raise instead of spinning.
                return False
        return False

    # -- looking without touching (mailbot doctor) ----------------------------

    def probe(self, folders: Iterable[str]) -> ImapProbe:
        """Log in as the daemon does and look around, changing nothing.

        Raises LoginRefused when the server refuses the login, SourceError
        for anything else.
        """
        try:
            with self._talking("logging in"):
                client = self._connect()
        except SourceError as exc:
            if isinstance(exc.__cause__, LoginError):
                # imapclient words it as the repr of the server's bytes: b'[...] ...'
                said = re.sub(r"^b(['\"])(.*)\1$", r"\2", _error_text(exc.__cause__))
                raise LoginRefused(said) from exc
            raise
        with self._talking("listing folders"):
            capabilities = frozenset(_text(c).upper() for c in client.capabilities())
            exist = {f: client.folder_exists(self._server_folder(client, f)) for f in folders}
        return ImapProbe(capabilities, exist)

    def server_time(self, folder: str) -> datetime:
        """The server's clock: the INTERNALDATE of a probe appended to ``folder``.

        The probe goes in flagged \\Deleted and \\Seen and is removed at once by
        UID EXPUNGE, which touches no other mail: only for a folder mailbot
        files into, never a watched one, and only where the server offers UIDPLUS.
        """
        with self._talking(f"reading the clock in {folder}"):
            client = self._connect()
            name = self._server_folder(client, folder)
            response = client.append(name, _CLOCK_PROBE, flags=(DELETED, SEEN))
            found = _APPENDUID.search(_text(response))
            if found is None:
                raise SourceError(f"{self.name}: no APPENDUID for the clock probe in {folder}")
            uid = int(found.group(1))
            self._selected = None
            client.select_folder(name)
            try:
                stamp = client.fetch([uid], [b"INTERNALDATE"]).get(uid, {}).get(b"INTERNALDATE")
            finally:
                # Not CLOSE: it would also expunge mail others marked deleted.
                client.uid_expunge([uid])
        if not isinstance(stamp, datetime):
            raise SourceError(f"{self.name}: no INTERNALDATE for the clock probe in {folder}")
        return _aware_utc(stamp)


def _announces_news(responses: list[Any]) -> bool:
    for response in responses:
        if not isinstance(response, tuple) or len(response) < 2:
            continue
        count, kind = response[0], response[1]
        if count == b"BYE":
            said = " ".join(_text(part) for part in response[1:])
            raise IMAPClientAbortError(f"the server closed the connection: {said}")
        if kind == b"EXISTS" or (kind == b"RECENT" and isinstance(count, int) and count > 0):
            return True
    return False


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


_APPENDUID = re.compile(r"\[APPENDUID \d+ (\d+)\]")
_CLOCK_PROBE = (
    b"From: mailbot doctor <doctor@invalid>\r\nSubject: mailbot doctor clock probe\r\n"
    b"Auto-Submitted: auto-generated\r\n\r\nRemoved as soon as its INTERNALDATE is read.\r\n"
)


class LoginRefused(SourceError):
    """The server refused the login (the user name, password or token); says the server's words."""


@dataclass(frozen=True)
class ImapProbe:
    """What a login shows: the server's capabilities, and which folders exist."""

    capabilities: frozenset[str]
    folders: dict[str, bool]
