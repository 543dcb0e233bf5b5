"""Attachments that hide the proposal: archives, winmail.dat, forwarded mail, download links."""

from __future__ import annotations

import base64
import io
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mailbot.calls import Call, RulesError, load_call
from mailbot.judge.checks import verdict_for
from mailbot.mail.containers.entries import DAMAGED, ENCRYPTED, LIMITS
from mailbot.mail.containers.zips import entry_name
from mailbot.mail.message import Message
from mailbot.mail.parsing import parse_message
from tests import diskwatch
from tests.conftest import RULES, CheckRunner, codes, roles, write_rules
from tests.docfactory import form_docx
from tests.mailfactory import build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes
from tests.tneffactory import tnef_bytes

BEIJING = timezone(timedelta(hours=8))
ON_TIME = datetime(2021, 7, 20, 10, 0, tzinfo=BEIJING)
INST, PI = "中国科学院植物研究所", "张喆"
STEM = f"{INST}+{PI}"
SUBJECT = f"合作专项建议书：{STEM}"


def proposal_files(stem: str = STEM) -> list[tuple[str, bytes]]:
    return [
        (f"{stem}.docx", form_docx()),
        (f"{stem}.pdf", pdf_bytes(2)),
        ("合作协议.pdf", pdf_bytes(1, "agreement")),
    ]


def zip_bytes(entries: Sequence[tuple[str, bytes]], *, gbk: bool = False) -> bytes:
    """A zip as archivers write it; ``gbk``: names in GBK without the UTF-8 flag (Chinese Windows)."""
    buffer = io.BytesIO()
    placeholders = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (name, data) in enumerate(entries):
            if gbk:
                raw = name.encode("gbk")
                placeholder = f"{index:04d}".encode().ljust(len(raw), b"_")
                placeholders.append((placeholder, raw))
                name = placeholder.decode()
            info = zipfile.ZipInfo(name, date_time=(2021, 7, 20, 9, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    data = buffer.getvalue()
    for placeholder, raw in placeholders:  # in the local header and in the central directory
        assert data.count(placeholder) == 2
        data = data.replace(placeholder, raw)
    return data


def contents(message: Message) -> dict[str, str | None]:
    return {a.filename: a.container for a in message.attachments}


# --- archives -------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["outlook", "foxmail", "qqmail", "coremail", "gmail"])
def test_a_zip_holding_the_proposal_is_accepted_with_a_warning(
    client: str, check: CheckRunner
) -> None:
    archive = zip_bytes([(f"申报材料/{name}", data) for name, data in proposal_files()])
    raw = build_mail(client, subject=SUBJECT, attachments=[Att("申报材料.zip", archive)])
    verdict = check(raw, ON_TIME)
    assert verdict["status"] == "accepted", verdict["problems"]
    assert codes(verdict) == ["archive_attachment"]
    [warning] = verdict["problems"]
    assert warning["severity"] == "warning"
    assert "申报材料.zip" in warning["message_zh"]
    assert f"{STEM}.docx" in warning["message_zh"]
    assert roles(verdict) == {
        "申报材料.zip": "supporting",
        f"{STEM}.docx": "word",
        f"{STEM}.pdf": "pdf",
        "合作协议.pdf": "supporting",
    }
    # The Word form inside the zip is read like an attached one.
    assert verdict["form"]["institution"] == INST


def test_a_zip_without_the_proposal_is_an_error_listing_what_it_holds(
    check: CheckRunner,
) -> None:
    archive = zip_bytes([("照片/实验室.jpg", b"\xff\xd8\xff" + b"0" * 64), ("说明.txt", b"hi")])
    attachments = [Att("材料.zip", archive)]
    verdict = check(build_mail("qqmail", subject=SUBJECT, attachments=attachments), ON_TIME)
    assert verdict["status"] == "needs_correction"
    assert set(codes(verdict)) == {"missing_word", "missing_pdf", "archive_attachment"}
    [problem] = [p for p in verdict["problems"] if p["code"] == "archive_attachment"]
    assert problem["severity"] == "error"
    # Listed as found, the folder's separator shown as a look-alike that separates nothing.
    assert "「照片∕实验室.jpg」「说明.txt」" in problem["message_zh"]
    assert "建议书 Word 文件和PDF 扫描件" in problem["message_zh"]


def test_a_zip_with_only_the_word_file_names_what_is_missing(check: CheckRunner) -> None:
    archive = zip_bytes([proposal_files()[0], ("签字页.jpg", b"\xff\xd8\xff" + b"0" * 64)])
    verdict = check(
        build_mail("foxmail", subject=SUBJECT, attachments=[Att("x.zip", archive)]), ON_TIME
    )
    assert set(codes(verdict)) == {"missing_pdf", "archive_attachment"}
    [problem] = [p for p in verdict["problems"] if p["code"] == "archive_attachment"]
    assert "没有PDF 扫描件" in problem["message_zh"]
    assert roles(verdict)[f"{STEM}.docx"] == "word"


def rar_bytes() -> bytes:
    return b"Rar!\x1a\x07\x01\x00" + bytes(range(256)) * 4


def seven_zip_bytes() -> bytes:
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(range(256)) * 4


def tar_gz_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in proposal_files():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        (f"{STEM}.rar", rar_bytes(), "rar"),
        (f"{STEM}.7z", seven_zip_bytes(), "7z"),
        (f"{STEM}.tar.gz", tar_gz_bytes(), "tar.gz"),
    ],
)
def test_archives_mailbot_does_not_open_are_an_error(
    name: str, data: bytes, kind: str, check: CheckRunner
) -> None:
    verdict = check(build_mail("outlook", subject=SUBJECT, attachments=[Att(name, data)]), ON_TIME)
    assert verdict["status"] == "needs_correction"
    [problem] = [p for p in verdict["problems"] if p["code"] == "archive_attachment"]
    assert problem["severity"] == "error"
    assert f"无法打开 .{kind} 格式" in problem["message_zh"]
    assert f"not .{kind}" in problem["message_en"]
    assert "直接作为附件发送" in problem["message_zh"]


def test_an_archive_beside_a_complete_proposal_is_only_a_warning(check: CheckRunner) -> None:
    attachments = [Att(name, data) for name, data in proposal_files()[:2]]
    attachments.append(Att("合作协议.rar", rar_bytes()))
    verdict = check(build_mail("coremail", subject=SUBJECT, attachments=attachments), ON_TIME)
    assert verdict["status"] == "accepted"
    assert codes(verdict) == ["archive_attachment"]
    assert verdict["problems"][0]["severity"] == "warning"


def test_gbk_entry_names_from_chinese_windows_are_read_as_gb18030(check: CheckRunner) -> None:
    archive = zip_bytes(proposal_files(), gbk=True)
    with zipfile.ZipFile(io.BytesIO(archive)) as raw_zip:  # what zipfile alone makes of them
        assert not any(i.flag_bits & 0x800 for i in raw_zip.infolist())
        assert f"{STEM}.docx" not in raw_zip.namelist()
    verdict = check(
        build_mail("outlook", subject=SUBJECT, attachments=[Att("材料.zip", archive)]), ON_TIME
    )
    assert verdict["status"] == "accepted", verdict["problems"]
    assert roles(verdict)[f"{STEM}.docx"] == "word"
    assert roles(verdict)["合作协议.pdf"] == "supporting"


def test_an_info_zip_unicode_path_field_wins_over_the_legacy_name() -> None:
    legacy = b"????.pdf"
    unicode_path = b"\x01" + struct.pack("<I", zlib.crc32(legacy)) + "协议.pdf".encode()
    info = zipfile.ZipInfo(legacy.decode())
    info.extra = struct.pack("<HH", 0x7075, len(unicode_path)) + unicode_path
    assert entry_name(info) == "协议.pdf"
    info.extra = b""
    assert entry_name(info) == "????.pdf"


def test_macos_leftovers_are_not_taken_for_files() -> None:
    entries = [
        *proposal_files(),
        (f"__MACOSX/._{STEM}.docx", b"\x00\x05\x16\x07"),
        (".DS_Store", b"x"),
    ]
    raw = build_mail("applemail", subject=SUBJECT, attachments=[Att("a.zip", zip_bytes(entries))])
    message = parse_message(raw)
    assert sorted(contents(message)) == sorted(["a.zip", *(n for n, _ in proposal_files())])


def test_a_word_file_is_a_zip_inside_yet_no_container() -> None:
    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    attachments = [Att(f"{STEM}.docx", form_docx()), Att(None, form_docx(), docx_type)]
    message = parse_message(build_mail("outlook", subject=SUBJECT, attachments=attachments))
    assert message.containers == ()
    assert [a.container for a in message.attachments] == [None, None]


def container_of(raw: bytes, call: Call | None = None) -> Any:
    message = parse_message(raw, call.documents if call else None)
    [container] = message.containers
    return container


def one_zip(entries: Sequence[tuple[str, bytes]]) -> bytes:
    return build_mail("foxmail", subject=SUBJECT, attachments=[Att("a.zip", zip_bytes(entries))])


def test_too_many_entries_are_refused_before_the_directory_is_read() -> None:
    container = container_of(one_zip([(f"{i}.txt", b"x") for i in range(101)]))
    assert container.refused == LIMITS
    assert container.listing == ()  # refused from the end record alone


def test_a_highly_compressed_entry_is_refused() -> None:
    container = container_of(one_zip([(f"{STEM}.pdf", b"\0" * (3 << 20))]))
    assert container.refused == LIMITS
    assert container.listing == (f"{STEM}.pdf",)


def test_a_decompression_bomb_is_refused_quickly() -> None:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(f"{STEM}.pdf", "w", force_zip64=True) as entry,
    ):
        chunk = b"\0" * (1 << 20)
        for _ in range(400):
            entry.write(chunk)
    raw = build_mail("foxmail", subject=SUBJECT, attachments=[Att("a.zip", buffer.getvalue())])
    started = time.monotonic()
    verdict = verdict_for(parse_message(raw), load_call(RULES), ON_TIME)
    assert time.monotonic() - started < 5
    assert "archive_attachment" in verdict.codes()
    assert "过大" in next(p.zh for p in verdict.problems if p.code == "archive_attachment")


def test_sizes_that_lie_make_a_damaged_archive() -> None:
    data = bytes(range(256)) * 40
    archive = zip_bytes([("a.pdf", data)])
    # The declared size (in both headers) says 100 bytes; the data inflates to more.
    declared = struct.pack("<I", len(data))
    assert archive.count(declared) == 2
    container = container_of(
        build_mail(
            "foxmail",
            subject=SUBJECT,
            attachments=[Att("a.zip", archive.replace(declared, struct.pack("<I", 100)))],
        )
    )
    assert container.refused == DAMAGED


def test_encrypted_and_damaged_zips(check: CheckRunner) -> None:
    archive = bytearray(zip_bytes(proposal_files()))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = archive.find(signature)
        while at >= 0:
            archive[at + flags_at] |= 0x01  # "encrypted"
            at = archive.find(signature, at + 4)
    container = container_of(
        build_mail("foxmail", subject=SUBJECT, attachments=[Att("a.zip", bytes(archive))])
    )
    assert container.refused == ENCRYPTED
    assert f"{STEM}.docx" in container.listing
    damaged = build_mail("foxmail", subject=SUBJECT, attachments=[Att("a.zip", b"PK\x03\x04xx")])
    assert container_of(damaged).refused == DAMAGED
    verdict = check(damaged, ON_TIME)
    [problem] = [p for p in verdict["problems"] if p["code"] == "archive_attachment"]
    assert "已损坏" in problem["message_zh"]


def test_the_limits_come_from_the_rules_file(tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8").replace(
        "max_archive_entries = 100", "max_archive_entries = 2"
    )
    strict = load_call(write_rules(tmp_path, text))
    assert strict.documents.max_archive_entries == 2
    raw = one_zip(proposal_files())
    assert container_of(raw).refused is None
    assert container_of(raw, strict).refused == LIMITS


def test_one_mail_s_archives_share_one_budget(tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8").replace(
        'max_archive_uncompressed = "100MB"', 'max_archive_uncompressed = "100KB"'
    )
    call = load_call(write_rules(tmp_path, text))
    blob = bytes(range(256)) * 240  # 60 KB that do not compress
    attachments = [
        Att("one.zip", zip_bytes([("1.pdf", blob)])),
        Att("two.zip", zip_bytes([("2.pdf", blob)])),
    ]
    message = parse_message(
        build_mail("foxmail", subject=SUBJECT, attachments=attachments), call.documents
    )
    assert [c.refused for c in message.containers] == [None, LIMITS]


def test_entry_names_never_reach_the_disk(tmp_path: Path) -> None:
    escape = tmp_path / "escaped.docx"
    entries = [
        (f"../../../../../../..{escape}", form_docx()),
        (str(tmp_path / "absolute.pdf"), pdf_bytes()),
        ("..\\..\\windows.pdf", pdf_bytes()),
    ]
    raw = build_mail("foxmail", subject=SUBJECT, attachments=[Att("a.zip", zip_bytes(entries))])
    with diskwatch.writes() as written:
        message = parse_message(raw)
        verdict_for(message, load_call(RULES), ON_TIME)
    assert written == []
    assert list(tmp_path.iterdir()) == []
    # The names are kept as data: the last part is the file's name, the rest is listed.
    assert {"escaped.docx", "absolute.pdf", "windows.pdf"} <= set(contents(message))
    assert message.containers[0].listing[0].startswith("../../")


# --- Outlook's winmail.dat --------------------------------------------------------------------


def winmail(files: Sequence[tuple[str, bytes]], **kwargs: Any) -> bytes:
    tnef = tnef_bytes(files, **kwargs)
    return build_mail(
        "outlook",
        subject=SUBJECT,
        attachments=[Att("winmail.dat", tnef, "application/ms-tnef")],
        body="您好，附件是我们的合作专项建议书，请查收。",
    )


def test_the_files_in_winmail_dat_are_the_mail_s_attachments(check: CheckRunner) -> None:
    verdict = check(winmail(proposal_files()), ON_TIME)
    assert verdict["status"] == "accepted", verdict["problems"]
    assert verdict["problems"] == []
    assert roles(verdict) == {
        "winmail.dat": "supporting",
        f"{STEM}.docx": "word",
        f"{STEM}.pdf": "pdf",
        "合作协议.pdf": "supporting",
    }
    assert verdict["form"]["pi"] == PI


def test_winmail_dat_without_long_names_reads_the_gbk_titles() -> None:
    message = parse_message(winmail(proposal_files(), long_names=False))
    assert contents(message) == {
        "winmail.dat": None,
        f"{STEM}.docx": "winmail.dat",
        f"{STEM}.pdf": "winmail.dat",
        "合作协议.pdf": "winmail.dat",
    }


def test_winmail_dat_without_a_name_is_known_by_its_type_and_signature() -> None:
    tnef = tnef_bytes(proposal_files())
    raw = build_mail(
        "outlook", subject=SUBJECT, attachments=[Att(None, tnef, "application/ms-tnef")]
    )
    assert f"{STEM}.docx" in contents(parse_message(raw))


def test_a_damaged_winmail_dat_costs_nothing_but_its_files(check: CheckRunner) -> None:
    raw = build_mail(
        "outlook",
        subject=SUBJECT,
        attachments=[Att("winmail.dat", b"\x78\x9f\x3e\x22\x01", "application/ms-tnef")],
    )
    verdict = check(raw, ON_TIME)
    assert {"missing_word", "missing_pdf"} <= set(codes(verdict))
    assert "archive_attachment" not in codes(verdict)


# --- forwarded mail ---------------------------------------------------------------------------

PLACEHOLDER = b"FORWARDED-MAIL-PLACEHOLDER"


def forward(inner: bytes, client: str = "outlook", name: str = "转发的邮件.eml") -> bytes:
    """``inner`` forwarded as an attachment (message/rfc822, 8bit), as Outlook and Foxmail do."""
    outer = build_mail(
        client,
        subject=f"FW: {SUBJECT}",
        attachments=[Att(name, PLACEHOLDER, "message/rfc822")],
        body="请见转发的邮件。",
    )
    encoded = base64.b64encode(PLACEHOLDER)
    at = outer.index(encoded)
    cte = outer.rindex(b"Content-Transfer-Encoding: base64", 0, at)
    outer = outer[:cte] + b"Content-Transfer-Encoding: 8bit" + outer[cte + 33 :]
    return outer.replace(encoded + b"\r\n", inner)


def applicant_mail(client: str = "qqmail", **kwargs: Any) -> bytes:
    files = [Att(name, data) for name, data in proposal_files()]
    return build_mail(client, subject=SUBJECT, attachments=files, **kwargs)


def test_a_forwarded_mail_brings_its_attachments(check: CheckRunner) -> None:
    verdict = check(forward(applicant_mail()), ON_TIME)
    assert verdict["status"] == "accepted", verdict["problems"]
    assert roles(verdict) == {
        "转发的邮件.eml": "supporting",
        f"{STEM}.docx": "word",
        f"{STEM}.pdf": "pdf",
        "合作协议.pdf": "supporting",
    }
    assert verdict["problems"] == []


def test_forwarded_mail_is_opened_one_level_deep() -> None:
    twice = forward(forward(applicant_mail(), name="inner.eml"), client="foxmail", name="outer.eml")
    message = parse_message(twice)
    assert contents(message) == {"outer.eml": None, "inner.eml": "outer.eml"}
    assert [(c.kind, c.filename) for c in message.containers] == [("message", "outer.eml")]
    assert not any(a.filename.endswith(".docx") for a in message.attachments)


# --- download links in place of attachments ---------------------------------------------------

QQ_OLD = (
    "从QQ邮箱发来的超大附件\n\n"
    f"{STEM}.pdf (128.03M, 2021年7月27日 21:59 到期)进入下载页面："
    "http://mail.qq.com/cgi-bin/ftnExs_download?t=exs_ftn_download&k=7d363834fce09c93f6&code=7684decd"
)
QQ_NEW = (
    "从QQ邮箱发来的超大附件\n"
    f"{STEM}.pdf (96.1M, 2021年8月10日 10:12 到期)\n"
    "进入下载页面：https://wx.mail.qq.com/ftn/download?func=3&k=1c2a3b&key=9f8e&code=a1b2c3d4"
)
NETEASE = (
    "来自网易邮箱的超大附件\n"
    f"{STEM}.pdf (88.2M, 2021年8月5日 18:00 到期)\n"
    "下载：https://mail.163.com/large-attachment-download/index.html?p=X66nEMqh&file=ABCD&title=x"
)
MASTER = f"从网易邮箱大师发来的超大附件\n{STEM}.pdf\nhttps://dashi.163.com/html/cloud-attachment-download/index.html?key=ab12"
COREMAIL = (
    f"{STEM}.pdf (70.5M, 过期时间：2021年8月20日)\n"
    "https://mail.cstnet.cn/coremail/common/nfFile.jsp?share_link=5418DA3CCDBA48F8A81AE154DA02C3D5&uid=zz%40ibcas.ac.cn"
)
ONEDRIVE = f"{STEM}.pdf\nhttps://1drv.ms/b/s!AglmNz5pzRt1mg6a7cq-Ghi-0h2D"
SHAREPOINT = f"{STEM}.pdf\nhttps://ibcas-my.sharepoint.com/:b:/g/personal/zz_ibcas_ac_cn/Ebc-OUDfUeNEhkO6Dh559U4B?e=0Dkz5J"
DRIVE = f"{STEM}.pdf\nhttps://drive.google.com/file/d/1SvsfddczTLjkVsSzJQPT1ykMjvKxDV1M/view?usp=drive_web"


@pytest.mark.parametrize(
    ("client", "notice", "service"),
    [
        ("qqmail", QQ_OLD, "QQ邮箱超大附件"),
        ("qqmail", QQ_NEW, "QQ邮箱超大附件"),
        ("foxmail", NETEASE, "网易邮箱超大附件"),
        ("foxmail", MASTER, "网易邮箱超大附件"),
        ("coremail", COREMAIL, "Coremail 云附件"),
        ("outlook", ONEDRIVE, "OneDrive / SharePoint 链接"),
        ("outlook", SHAREPOINT, "OneDrive / SharePoint 链接"),
        ("gmail", DRIVE, "Google 云端硬盘链接"),
    ],
)
def test_a_large_attachment_link_in_place_of_the_pdf(
    client: str, notice: str, service: str, check: CheckRunner
) -> None:
    body = f"您好，建议书 PDF 太大，以超大附件发送：\n\n{notice}\n"
    attachments = [Att(f"{STEM}.docx", form_docx()), Att("合作协议.pdf", pdf_bytes())]
    verdict = check(
        build_mail(client, subject=SUBJECT, attachments=attachments, body=body), ON_TIME
    )
    assert verdict["status"] == "needs_correction"
    # The agreement is supporting material, so the scan is missing; the link says where it went.
    assert codes(verdict) == ["missing_pdf", "large_attachment_link"]
    problem = verdict["problems"][-1]
    assert problem["severity"] == "error"
    assert problem["message_zh"].startswith(f"邮件正文中是{service}的下载链接")
    assert "直接作为附件发送" in problem["message_zh"]
    assert "attach the Word proposal and the signed PDF scan directly" in problem["message_en"]


def test_a_link_only_in_the_html_is_found(check: CheckRunner) -> None:
    """QQ Mail's card: the link is in an href, the text says only 下载 (download)."""
    html = (
        '<div>您好</div><div class="bigatt_bt" title="x.pdf&#10;文件大小：96.1M">'
        '<a href="https://wx.mail.qq.com/ftn/download?func=3&amp;k=1c2a&amp;code=a1b2">下载</a></div>'
    )
    raw = (
        "From: zz@qq.com\r\nTo: anso2021program@anso.org.cn\r\n"
        f"Subject: =?utf-8?B?{base64.b64encode(SUBJECT.encode()).decode()}?=\r\n"
        "Date: Tue, 20 Jul 2021 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(html.encode()).decode().replace("\n", "\r\n")
    ).encode()
    verdict = check(raw, ON_TIME)
    assert "large_attachment_link" in codes(verdict)


def test_a_link_in_a_forwarded_mail_counts(check: CheckRunner) -> None:
    inner = build_mail("qqmail", subject=SUBJECT, body=f"您好\n\n{QQ_NEW}\n")
    verdict = check(forward(inner), ON_TIME)
    assert "large_attachment_link" in codes(verdict)


def test_links_beside_a_complete_proposal_are_no_problem(check: CheckRunner) -> None:
    body = f"数据集见 {DRIVE}\n（签名）"
    verdict = check(applicant_mail("gmail", body=body), ON_TIME)
    assert verdict["status"] == "accepted"
    assert "large_attachment_link" not in codes(verdict)


def test_the_services_are_rules_data(tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8")
    without = load_call(write_rules(tmp_path, text[: text.index("# --- Download links")]))
    assert without.links.services == []
    raw = build_mail("qqmail", subject=SUBJECT, body=QQ_NEW)
    assert (
        "large_attachment_link"
        in verdict_for(parse_message(raw), load_call(RULES), ON_TIME).codes()
    )
    assert "large_attachment_link" not in verdict_for(parse_message(raw), without, ON_TIME).codes()


def test_a_hostile_body_is_searched_quickly(check: CheckRunner) -> None:
    """Runs of letters and dots that make a careless pattern backtrack for minutes."""
    body = "h" * 150_000 + "\n" + "a." * 50_000 + "\n" + "/coremail/" * 20_000
    raw = build_mail("foxmail", subject=SUBJECT, body=body)
    started = time.monotonic()
    verdict = check(raw, ON_TIME)
    assert time.monotonic() - started < 5
    assert "large_attachment_link" not in codes(verdict)


@pytest.mark.parametrize("pattern", ["[a-z0-9-]+\\.ftn\\.qq\\.com/", "x.*y", "a{2,}"])
def test_a_pattern_that_repeats_without_bound_is_refused(pattern: str, tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8").replace(
        "patterns = ['pan\\.baidu", f"patterns = ['{pattern}', 'pan\\.baidu"
    )
    with pytest.raises(RulesError, match="repeats without bound"):
        load_call(write_rules(tmp_path, text))
