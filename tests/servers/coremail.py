"""A stand-in for a Coremail or NetEase IMAP server: it refuses SELECT until the client sent ID.

Coremail cannot run here and Dovecot has no such rule, so this tiny server
speaks just enough IMAP (CAPABILITY, LOGIN, ID, LIST, SELECT/EXAMINE,
NOOP, LOGOUT) for one behaviour: the refusal these servers give a client that
never said who it is (RFC 2971). Everything else mailbot does over IMAP is
tested against Dovecot.
"""

from __future__ import annotations

import re
import socketserver
import threading
from typing import Self

from tests.servers.common import LOCALHOST, ManagedServer

# NetEase's words, as clients without ID meet them.
UNSAFE_LOGIN = "SELECT Unsafe Login. Please contact kefu@188.com for help"

_COMMAND = re.compile(rb"^(\S+) (\S+)(?: (.*))?$")


class FakeCoremail(ManagedServer):
    """One mailbox, empty INBOX, any password; ``ids`` holds what clients sent with ID."""

    def __init__(self, *, advertise_id: bool = True, refuse_id: bool = False) -> None:
        self.host = LOCALHOST
        self.advertise_id = advertise_id
        self.refuse_id = refuse_id
        self.ids: list[bytes] = []
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not running"
        return int(self._server.server_address[1])

    def start(self) -> Self:
        if self._server is None:
            handler = type("Session", (_Session,), {"owner": self})
            self._server = socketserver.ThreadingTCPServer((self.host, 0), handler)
            self._server.daemon_threads = True
            # stop() waits for the serving loop to look again: every 50 ms, not the default 0.5 s.
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
            self._register_cleanup()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class _Session(socketserver.StreamRequestHandler):
    owner: FakeCoremail
    _capabilities: str
    _identified: bool  # whether the client sent ID in this session

    def _send(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._capabilities = "IMAP4rev1 IDLE UIDPLUS" + (" ID" if self.owner.advertise_id else "")
        self._send("* OK Coremail System IMap Server Ready")
        self._identified = False
        for raw in self.rfile:
            match = _COMMAND.match(raw.rstrip(b"\r\n"))
            if match is None:
                self._send("* BAD what?")
                continue
            tag, command, rest = match.group(1).decode(), match.group(2).upper(), match.group(3)
            if command == b"LOGOUT":
                self._send("* BYE Coremail IMAP server says goodbye")
                self._send(f"{tag} OK LOGOUT completed")
                return
            if self._answer(tag, command, rest):
                self._send(f"{tag} OK {command.decode()} completed")

    def _answer(self, tag: str, command: bytes, rest: bytes | None) -> bool:
        """Send the untagged replies to one command; False when it was refused (NO or BAD sent)."""
        if command == b"CAPABILITY":
            self._send(f"* CAPABILITY {self._capabilities}")
        elif command == b"LIST":
            self._send('* LIST (\\Noselect) "/" ""')
        elif command == b"ID" and self.owner.refuse_id:
            self._send(f"{tag} NO ID not allowed here")
            return False
        elif command == b"ID":
            self.owner.ids.append(rest or b"")
            self._identified = True
            self._send('* ID ("name" "Coremail Imap" "vendor" "Mailtech")')
        elif command in (b"SELECT", b"EXAMINE"):
            if not self._identified:
                self._send(f"{tag} NO {UNSAFE_LOGIN}")
                return False
            self._send("* 0 EXISTS")
            self._send("* OK [UIDVALIDITY 1625097600] UIDs valid")
            self._send("* OK [UIDNEXT 1] Predicted next UID")
        elif command not in (b"LOGIN", b"NOOP"):
            self._send(f"{tag} BAD {command.decode()} is not spoken here")
            return False
        return True
