"""The review packet: `mailbot packet OUT.zip` and the desk's button give the same zip, read
back here: a folder per accepted submission, every file's sha256 as the store holds it,
index.xlsx and SHA256SUMS, the same bytes on every run, hostile file names made safe."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from mailbot.domain import SubmissionStatus
from mailbot.ledger.packet import PacketError, safe_part, write_packet
from mailbot.store.blobs import BlobStore
from mailbot.store.models import Mail, Submission, Version
from tests.conftest import ROOT
from tests.daemon_support import july
from tests.web_support import Client, RunningDesk, running_desk

# Slow: each test fills a database through the pipeline.
pytestmark = pytest.mark.slow

RLO = "\u202e"
LONG = "合作伙伴协议" * 30 + "agreement" * 2 + ".pdf"  # 200 characters, 560 bytes of UTF-8
HOSTILE_NAMES = (
    "../../etc/passwd.docx",
    "a/b\\c.pdf",
    f"invoice{RLO}fdp.exe",
    LONG,
    "协议.pdf",
    "协议.PDF",  # the same name to Windows: kept apart
)


def _add_hostile(desk: RunningDesk) -> None:
    """An accepted submission whose files bear names no disk should take as they are."""
    app = desk.app
    files = []
    for n, name in enumerate(HOSTILE_NAMES):
        data = f"file {n}: {name}".encode()
        files.append(
            {
                "filename": name,
                "role": "word" if n == 0 else "pdf" if n == 1 else "supporting",
                "size": len(data),
                "sha256": app.blobs.put(data),
            }
        )
    with app.db.transaction() as session:
        seq = max(s.seq for s in session.scalars(select(Submission))) + 1
        submission = Submission(
            call_id=app.call.id,
            seq=seq,
            reference=f"ANSO2021-{seq:04d}",
            institution=f"恶意/研究所{RLO}",
            pi="张三" * 100,
            institution_key="hostile",
            pi_key="hostile",
            status=str(SubmissionStatus.ACCEPTED_BY_DECISION),
            current_version=1,
        )
        mail = Mail(
            call_id=app.call.id,
            source="maildir:test",
            folder="INBOX",
            location="hostile-names",
            raw_sha256=app.blobs.put(b"From: a@example.org\r\n\r\nhostile\r\n"),
            raw_size=10,
            sender="a@example.org",
            subject="hostile names",
            received_at=july(29, 10),
            status="accepted",
            settled=True,
            submission=submission,
        )
        session.add_all([submission, mail])
        session.flush()
        session.add(
            Version(
                submission=submission,
                number=1,
                mail_id=mail.id,
                kind="new",
                status="accepted",
                files=files,
                received_at=july(29, 10),
            )
        )


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    with running_desk(tmp_path_factory.mktemp("packet") / "demo") as running:
        _add_hostile(running)
        yield running


def _packet_cli(desk: RunningDesk, out: Path, tz: str = "UTC") -> subprocess.CompletedProcess[str]:
    config = str(desk.root / "mailbot.toml")
    return subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", config, "packet", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
        env={**os.environ, "TZ": tz},
    )


def _accepted(desk: RunningDesk) -> dict[str, list[dict[str, object]]]:
    """Each accepted submission's reference and its current version's files."""
    with desk.app.db.transaction() as session:
        found = {}
        for s in session.scalars(select(Submission)):
            if s.status in ("accepted", "accepted_by_decision"):
                version = session.scalar(
                    select(Version).where(
                        Version.submission_id == s.id, Version.number == s.current_version
                    )
                )
                found[s.reference] = list(version.files) if version else []
        return found


def test_the_packet_round_trips_every_sha256_against_the_store(
    desk: RunningDesk, tmp_path: Path
) -> None:
    out = tmp_path / "panel" / "packet.zip"
    result = _packet_cli(desk, out)
    assert result.returncode == 0, result.stderr
    accepted = _accepted(desk)
    assert len(accepted) >= 3
    assert f"{len(accepted)} accepted submissions" in result.stdout
    with zipfile.ZipFile(out) as packet:
        assert packet.testzip() is None
        names = packet.namelist()
        sums = packet.read("SHA256SUMS").decode().splitlines()
        listed = {name: sha for sha, name in (line.split("  ", 1) for line in sums)}
        files = [n for n in names if n not in ("SHA256SUMS", "index.xlsx")]
        assert sorted(files) == sorted(listed) == files  # every file summed, in sorted order
        for name in files:
            data = packet.read(name)
            assert hashlib.sha256(data).hexdigest() == listed[name]
            assert desk.app.blobs.get(listed[name]) == data
        folders = {name.split("/", 1)[0] for name in files}
        assert {f.split(" ", 1)[0] for f in folders} == set(accepted)
        for reference, version_files in accepted.items():
            inside = {listed[n] for n in files if n.startswith(reference + " ")}
            assert inside == {f["sha256"] for f in version_files}, reference
        index = load_workbook(io.BytesIO(packet.read("index.xlsx")))
    rows = list(index["Proposals"].iter_rows(values_only=True))
    assert rows[0][0] == "编号 Reference"
    assert sorted(str(r[0]) for r in rows[1:]) == sorted(accepted)
    file_rows = list(index["Files"].iter_rows(values_only=True))[1:]
    assert sorted(str(r[4]) for r in file_rows) == sorted(listed.values())
    demo = next(r for r in rows[1:] if r[3])  # a demo proposal: its form's facts are listed
    assert all((demo[1], demo[2], demo[4]))
    assert all(str(line.split("  ")[-1]) in listed.values() for line in str(demo[8]).split("\n"))


def test_hostile_names_become_one_safe_level_of_folder_and_file(
    desk: RunningDesk, tmp_path: Path
) -> None:
    out = tmp_path / "packet.zip"
    assert _packet_cli(desk, out).returncode == 0
    with zipfile.ZipFile(out) as packet:
        names = [n for n in packet.namelist() if "/" in n]
        hostile = [n for n in names if "恶意" in n]
        assert len(hostile) == len(HOSTILE_NAMES)
        for name in names:
            folder, file = name.split("/")  # one level: no slash of a sender's survives
            for part in (folder, file):
                assert 0 < len(part.encode()) <= 255
                assert not {RLO, "\\"} & set(part)
                assert part != ".."
        assert len({n.casefold() for n in names}) == len(names)
        longest = max(hostile, key=len).split("/")[1]
        assert longest.startswith("合作伙伴协议")
        assert longest.endswith(".pdf")
        assert any(n.endswith("/invoicefdp.exe") for n in hostile)
        assert sorted(n.split("/")[1] for n in hostile if "/协议" in n) == [
            "协议 (2).pdf",
            "协议.PDF",
        ]
        # Extracted, it stays in its folder and every file can be written.
        packet.extractall(tmp_path / "out")
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(written) == len(names) + 2


def test_the_same_database_gives_the_same_bytes_and_the_desk_gives_them_too(
    desk: RunningDesk, tmp_path: Path
) -> None:
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    assert _packet_cli(desk, first).returncode == 0
    # Another time zone, later: zip entries otherwise carry the local time of their making.
    assert _packet_cli(desk, second, tz="America/New_York").returncode == 0
    assert first.read_bytes() == second.read_bytes()
    stamp = (2021, 7, 31, 0, 0, 0)  # the deadline, 2021-07-30 24:00 Beijing time
    with zipfile.ZipFile(first) as packet:
        assert {i.date_time for i in packet.infolist()} == {stamp}
        with zipfile.ZipFile(io.BytesIO(packet.read("index.xlsx"))) as index:
            assert {i.date_time for i in index.infolist()} == {stamp}
            core = index.read("docProps/core.xml").decode()
    assert core.count("2021-07-31T00:00:00Z") == 2
    editor = Client(desk.url)
    assert editor.login().status == 303
    page = editor.get("/log").text
    assert 'action="/packet.zip"' in page
    answer = editor.post("/packet.zip", {"csrf_token": editor.token("/log")})
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/zip"
    assert "review-packet" in answer.headers["Content-Disposition"]
    assert answer.body == first.read_bytes()
    assert editor.get("/packet.zip").status == 405  # a download that only a POST gives


def test_a_missing_or_damaged_file_stops_the_packet_with_its_name(
    desk: RunningDesk, tmp_path: Path
) -> None:
    with desk.app.db.transaction() as session, pytest.raises(PacketError, match="not in the store"):
        write_packet(session, desk.app.call, BlobStore(tmp_path / "empty"), io.BytesIO())
    damaged = BlobStore(tmp_path / "damaged")
    with desk.app.db.transaction() as session:
        for files in _accepted(desk).values():
            for f in files:
                target = damaged.path(str(f["sha256"]))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"not the proposal")
        with pytest.raises(PacketError, match="no longer match"):
            write_packet(session, desk.app.call, damaged, io.BytesIO())


def test_a_packet_must_be_a_zip_and_says_so_in_one_line(desk: RunningDesk, tmp_path: Path) -> None:
    result = _packet_cli(desk, tmp_path / "packet.tar")
    assert result.returncode == 2
    assert result.stderr.strip() == f"mailbot: {tmp_path / 'packet.tar'}: the packet is a .zip file"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("a/b\\c.pdf", "a_b_c.pdf"),
        (f"x{RLO}fdp.exe", "xfdp.exe"),
        ("建议书.docx. ", "建议书.docx"),
        ("...", "file"),
        ("", "file"),
    ],
)
def test_safe_part(name: str, safe: str) -> None:
    assert safe_part(name) == safe


def test_the_command_line_loads_the_packet_only_when_asked() -> None:
    code = "import sys, mailbot.cli; print(sorted(m for m in ('openpyxl', 'mailbot.ledger.packet') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run(
        [sys.executable, "-m", "mailbot", "--help"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    assert "packet" in help_text
