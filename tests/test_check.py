"""`mailbot check --json`: every rule of the call, on mails as real clients send them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.conftest import CheckRunner, codes, roles
from tests.docfactory import form_docx
from tests.mailfactory import CLIENTS, build_mail
from tests.mailfactory.base import Att
from tests.mailfactory.documents import pdf_bytes

BEIJING = timezone(timedelta(hours=8))
ON_TIME = datetime(2021, 7, 20, 10, 0, tzinfo=BEIJING)
INST, PI = "中国科学院植物研究所", "张喆"
STEM = f"{INST}+{PI}"
SUBJECT = f"合作专项建议书：{STEM}"


def good_files(stem: str = STEM) -> list[Att]:
    return [
        Att(f"{stem}.docx", form_docx()),
        Att(f"{stem}.pdf", pdf_bytes(2)),
        Att("合作协议.pdf", pdf_bytes(1, "agreement")),
    ]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_good_submission_from_every_client_is_accepted(client: str, check: CheckRunner) -> None:
    verdict = check(build_mail(client, subject=SUBJECT, attachments=good_files()), ON_TIME)
    assert verdict["status"] == "accepted", verdict["problems"]
    assert verdict["institution"] == INST
    assert verdict["pi"] == PI
    assert verdict["problems"] == []
    assert roles(verdict) == {
        f"{STEM}.docx": "word",
        f"{STEM}.pdf": "pdf",
        "合作协议.pdf": "supporting",
    }
    for item in verdict["attachments"]:
        assert item["size"] > 0
        assert len(item["sha256"]) == 64


@pytest.mark.parametrize(
    "subject",
    [
        f"合作专项建议书:{STEM}",
        f"合作专项建议书：{INST}＋{PI}",
        f"合作专项建议书 ： {INST} + {PI} ",
        f"Re: {SUBJECT}",
        f"RE: {SUBJECT}",
        f"Fwd: {SUBJECT}",
        f"FW: {SUBJECT}",
        f"回复：{SUBJECT}",
        f"答复：{SUBJECT}",
        f"转发：{SUBJECT}",
        f"回复: 转发: {SUBJECT}",
    ],
)
def test_subject_slack(subject: str, check: CheckRunner) -> None:
    verdict = check(build_mail("foxmail", subject=subject, attachments=good_files()), ON_TIME)
    assert verdict["status"] == "accepted", verdict["problems"]
    assert (verdict["institution"], verdict["pi"]) == (INST, PI)


@pytest.mark.parametrize(
    "subject",
    [
        f"建议书：{STEM}",
        f"合作专项建议书{STEM}",
        f"合作专项建议书：{INST}",
        "ANSO proposal",
        "",
        f"【合作专项建议书】{STEM}",
    ],
)
def test_subject_format_spells_out_the_expected_subject(subject: str, check: CheckRunner) -> None:
    verdict = check(build_mail("outlook", subject=subject, attachments=good_files()), ON_TIME)
    assert verdict["status"] == "needs_correction"
    assert codes(verdict) == ["subject_format"]
    [problem] = verdict["problems"]
    assert problem["severity"] == "error"
    # The files carry the applicant's names, so the reply can say exactly what to write.
    assert f"「{SUBJECT}」" in problem["message"]
    assert problem["message"].index("主题") < problem["message"].index("subject")


def test_subject_format_without_any_names_shows_the_pattern(check: CheckRunner) -> None:
    files = [Att("proposal.docx", form_docx()), Att("scan.pdf", pdf_bytes())]
    verdict = check(build_mail("gmail", subject="application", attachments=files), ON_TIME)
    assert verdict["institution"] is None
    assert verdict["pi"] is None
    messages = " ".join(p["message"] for p in verdict["problems"])
    assert "合作专项建议书：项目牵头单位名称+项目负责人姓名" in messages
    assert "项目牵头单位名称+项目负责人姓名.docx" in messages
    assert "项目牵头单位名称+项目负责人姓名.pdf" in messages


def test_misnamed_attachments(check: CheckRunner) -> None:
    files = [
        Att("建议书.docx", form_docx()),
        Att("扫描件.PDF", pdf_bytes()),
        Att("协议.pdf", pdf_bytes()),
    ]
    verdict = check(build_mail("coremail", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "needs_correction"
    assert codes(verdict) == ["attachment_name", "attachment_name"]
    word, pdf = verdict["problems"]
    assert f"「{STEM}.docx」" in word["message"]
    assert "建议书.docx" in word["message"]
    assert f"「{STEM}.pdf」" in pdf["message"]
    assert "扫描件.PDF" in pdf["message"]
    assert roles(verdict)["建议书.docx"] == "word"


def test_names_compare_after_nfkc_and_without_spaces_and_any_extension_case(
    check: CheckRunner,
) -> None:
    files = [
        Att("中国科学院 植物研究所＋张喆.DOCX", form_docx()),
        Att(f"{STEM}.Pdf", pdf_bytes()),
        Att("letter.pdf", pdf_bytes()),
    ]
    verdict = check(build_mail("applemail", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "accepted", verdict["problems"]


@pytest.mark.parametrize(
    "suffix", ["（盖章版）", "(signed)", "【签字盖章】", " [final]", "_（定稿）"]
)
def test_a_bracketed_suffix_is_tolerated_with_a_warning(suffix: str, check: CheckRunner) -> None:
    files = [
        Att(f"{STEM}.docx", form_docx()),
        Att(f"{STEM}{suffix}.pdf", pdf_bytes()),
        Att("a.pdf", pdf_bytes()),
    ]
    verdict = check(build_mail("qqmail", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "accepted"
    assert codes(verdict) == ["attachment_name_suffix"]
    assert verdict["problems"][0]["severity"] == "warning"
    assert roles(verdict)[f"{STEM}{suffix}.pdf"] == "pdf"


def test_a_suffix_that_is_not_bracketed_is_a_misname(check: CheckRunner) -> None:
    files = [
        Att(f"{STEM}.docx", form_docx()),
        Att(f"{STEM}盖章版.pdf", pdf_bytes()),
        Att("a.pdf", pdf_bytes()),
    ]
    verdict = check(build_mail("qqmail", subject=SUBJECT, attachments=files), ON_TIME)
    assert codes(verdict) == ["attachment_name"]


def test_missing_word_names_the_wps_file_that_does_not_count(check: CheckRunner) -> None:
    files = [
        Att(f"{STEM}.wps", b"WPS" * 100),
        Att(f"{STEM}.pdf", pdf_bytes()),
        Att("a.jpg", b"\xff\xd8" * 50),
    ]
    verdict = check(build_mail("foxmail", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "needs_correction"
    assert codes(verdict) == ["missing_word"]
    message = verdict["problems"][0]["message"]
    assert f"{STEM}.docx" in message
    assert f"{STEM}.wps" in message
    assert roles(verdict)[f"{STEM}.wps"] == "supporting"


def test_missing_pdf_and_an_image_does_not_count(check: CheckRunner) -> None:
    files = [Att(f"{STEM}.docx", form_docx()), Att(f"{STEM}.jpg", b"\xff\xd8" * 50)]
    verdict = check(build_mail("outlook", subject=SUBJECT, attachments=files), ON_TIME)
    assert codes(verdict) == ["missing_pdf"]
    assert f"{STEM}.pdf" in verdict["problems"][0]["message"]


def test_no_attachments_at_all(check: CheckRunner) -> None:
    verdict = check(build_mail("gmail", subject=SUBJECT), ON_TIME)
    assert verdict["status"] == "needs_correction"
    assert codes(verdict) == ["missing_word", "missing_pdf", "supporting_material_missing"]


def test_supporting_material_missing_is_only_a_warning(check: CheckRunner) -> None:
    files = [Att(f"{STEM}.docx", form_docx()), Att(f"{STEM}.pdf", pdf_bytes())]
    verdict = check(build_mail("outlook", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "accepted"
    assert codes(verdict) == ["supporting_material_missing"]
    assert verdict["problems"][0]["severity"] == "warning"


def test_the_legacy_doc_format_is_a_word_file(check: CheckRunner) -> None:
    files = [
        Att(f"{STEM}.doc", b"\xd0\xcf\x11\xe0" * 300),
        Att(f"{STEM}.pdf", pdf_bytes()),
        Att("x.pdf", pdf_bytes()),
    ]
    verdict = check(build_mail("outlook", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "accepted"
    assert roles(verdict)[f"{STEM}.doc"] == "word"


def test_inline_signature_images_are_not_supporting_material(check: CheckRunner) -> None:
    files = [
        Att(f"{STEM}.docx", form_docx()),
        Att(f"{STEM}.pdf", pdf_bytes()),
        Att(None, b"\x89PNG" * 10, "image/png", inline_cid="sig@x"),
    ]
    verdict = check(build_mail("outlook", subject=SUBJECT, attachments=files), ON_TIME)
    assert codes(verdict) == ["supporting_material_missing"]
    assert len(verdict["attachments"]) == 2


def test_names_come_from_the_files_when_the_subject_has_none(check: CheckRunner) -> None:
    verdict = check(build_mail("coremail", subject="建议书", attachments=good_files()), ON_TIME)
    assert (verdict["institution"], verdict["pi"]) == (INST, PI)
    assert codes(verdict) == ["subject_format"]


def test_an_empty_file(check: CheckRunner) -> None:
    files = [Att(f"{STEM}.docx", form_docx()), Att(f"{STEM}.pdf", b""), Att("a.pdf", pdf_bytes())]
    verdict = check(build_mail("gmail", subject=SUBJECT, attachments=files), ON_TIME)
    assert codes(verdict) == ["attachment_empty"]


def test_an_attachment_over_the_size_limit(check: CheckRunner) -> None:
    big = pdf_bytes() + b"0" * (51 * 1024 * 1024)
    files = [Att(f"{STEM}.docx", form_docx()), Att(f"{STEM}.pdf", big), Att("a.pdf", pdf_bytes())]
    verdict = check(build_mail("gmail", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "needs_correction"
    assert codes(verdict) == ["attachment_too_large"]
    assert "50.0 MB" in verdict["problems"][0]["message"]


# The deadline: 2021-07-30 24:00 Beijing time; late means strictly after it.
@pytest.mark.parametrize(
    ("received_at", "status"),
    [
        ("2021-07-30T23:59:59+08:00", "accepted"),
        ("2021-07-31T00:00:00+08:00", "accepted"),
        ("2021-07-31T00:00:01+08:00", "late"),
        ("2021-07-30T15:59:59+00:00", "accepted"),
        ("2021-07-30T16:00:01Z", "late"),
        ("2021-07-30T23:59:59", "accepted"),  # no offset: the call's own time zone
        ("2021-07-31T00:00:01", "late"),
    ],
)
def test_deadline_edges(received_at: str, status: str, check: CheckRunner) -> None:
    verdict = check(build_mail("coremail", subject=SUBJECT, attachments=good_files()), received_at)
    assert verdict["status"] == status
    assert verdict["received_at"].endswith("+08:00")


def test_late_wins_whatever_else_is_wrong(check: CheckRunner) -> None:
    verdict = check(build_mail("qqmail", subject="hello"), "2021-08-02T09:00:00+08:00")
    assert verdict["status"] == "late"
    assert codes(verdict)[0] == "late"
    assert "2021-07-30 24:00" in verdict["problems"][0]["message"]
    assert "2021-08-02 09:00:00" in verdict["problems"][0]["message"]


@pytest.mark.parametrize(
    ("when", "status"),
    [
        (datetime(2021, 7, 30, 15, 59, 59, tzinfo=UTC), "accepted"),
        (datetime(2021, 7, 30, 16, 0, 1, tzinfo=UTC), "late"),
    ],
)
def test_receipt_time_from_the_topmost_received_header(
    when: datetime, status: str, check: CheckRunner
) -> None:
    raw = build_mail(
        "outlook",
        subject=SUBJECT,
        attachments=good_files(),
        date=datetime(2021, 7, 29, 9, 0, tzinfo=BEIJING),
        received_at=when,
    )
    verdict = check(raw)
    assert verdict["status"] == status
    assert datetime.fromisoformat(verdict["received_at"]) == when


@pytest.mark.parametrize(
    ("when", "status"),
    [
        (datetime(2021, 7, 30, 15, 59, 59, tzinfo=UTC), "accepted"),
        (datetime(2021, 7, 30, 16, 0, 1, tzinfo=UTC), "late"),
    ],
)
def test_receipt_time_from_a_date_in_plus_0000(
    when: datetime, status: str, check: CheckRunner
) -> None:
    raw = build_mail("gmail", subject=SUBJECT, attachments=good_files(), date=when)
    assert b"+0000" in raw
    verdict = check(raw)
    assert verdict["status"] == status
    assert verdict["received_at"] == when.astimezone(BEIJING).isoformat()


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ([("Auto-Submitted", "auto-replied")], "auto_reply"),
        ([("Auto-Submitted", "auto-generated")], "auto_reply"),
        ([("X-Autoreply", "yes")], "auto_reply"),
        ([("X-Autorespond", "Out of office")], "auto_reply"),
        ([("Precedence", "bulk")], "bulk"),
        ([("Precedence", "junk")], "bulk"),
        ([("Precedence", "list")], "bulk"),
        ([("List-Id", "<anso-news.lists.example.org>")], "bulk"),
        ([("Return-Path", "<>")], "bounce"),
    ],
)
def test_mail_never_to_answer_is_ignored(
    headers: list[tuple[str, str]], code: str, check: CheckRunner
) -> None:
    raw = build_mail("outlook", subject=SUBJECT, attachments=good_files(), headers=headers)
    verdict = check(raw, ON_TIME)
    assert verdict["status"] == "ignored"
    assert code in codes(verdict)
    assert all(p["severity"] == "info" for p in verdict["problems"])


def test_auto_submitted_no_is_an_ordinary_mail(check: CheckRunner) -> None:
    raw = build_mail(
        "outlook", subject=SUBJECT, attachments=good_files(), headers=[("Auto-Submitted", "no")]
    )
    assert check(raw, ON_TIME)["status"] == "accepted"


@pytest.mark.parametrize("local", ["MAILER-DAEMON", "postmaster", "Mailer-Daemon"])
def test_daemon_senders_are_bounces(local: str, check: CheckRunner) -> None:
    raw = build_mail(
        "raw_utf8",
        subject="Undelivered Mail Returned to Sender",
        sender=("Mail Delivery System", f"{local}@mx.ibcas.ac.cn"),
    )
    verdict = check(raw, ON_TIME)
    assert verdict["status"] == "ignored"
    assert codes(verdict) == ["bounce"]


def test_a_delivery_status_report_is_a_bounce(check: CheckRunner) -> None:
    raw = (
        "From: Mail System <system@mx.qq.com>\r\nTo: anso2021program@anso.org.cn\r\n"
        "Subject: 系统退信\r\nDate: Fri, 23 Jul 2021 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ndelivery failed\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.qq.com\r\n\r\n"
        "Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--r--\r\n"
    ).encode()
    verdict = check(raw, ON_TIME)
    assert verdict["status"] == "ignored"
    assert codes(verdict) == ["bounce"]


def test_a_read_receipt_report_is_not_answered(check: CheckRunner) -> None:
    raw = (
        "From: 张喆 <zz@ibcas.ac.cn>\r\nSubject: 已读: 合作专项建议书\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nread\r\n--r--\r\n"
    ).encode()
    assert check(raw, ON_TIME)["status"] == "ignored"


@pytest.mark.parametrize(
    "raw",
    [
        b"To: anso2021program@anso.org.cn\r\nSubject: x\r\n\r\nno from\r\n",
        b"From: \r\nSubject: x\r\n\r\nempty from\r\n",
        b"From: undisclosed-recipients:;\r\nSubject: x\r\n\r\ngroup\r\n",
        b"From: Zhang Zhe\r\nSubject: x\r\n\r\nno address\r\n",
    ],
)
def test_no_usable_sender(raw: bytes, check: CheckRunner) -> None:
    verdict = check(raw, ON_TIME)
    assert verdict["status"] == "ignored"
    assert codes(verdict) == ["no_sender"]


def test_an_ignored_mail_stays_ignored_after_the_deadline(check: CheckRunner) -> None:
    raw = build_mail(
        "outlook", subject="自动回复: 合作专项建议书", headers=[("Auto-Submitted", "auto-replied")]
    )
    assert check(raw, "2021-08-05T10:00:00+08:00")["status"] == "ignored"


@pytest.mark.parametrize("client", CLIENTS)
def test_receipt_time_defaults_to_the_date_header(client: str, check: CheckRunner) -> None:
    raw = build_mail(
        client,
        subject=SUBJECT,
        attachments=good_files(),
        date=datetime(2021, 7, 28, 16, 30, tzinfo=BEIJING),
    )
    assert check(raw)["received_at"] == "2021-07-28T16:30:00+08:00"


def test_several_signs_of_one_reason_make_one_problem(check: CheckRunner) -> None:
    raw = build_mail(
        "raw_utf8",
        subject="Undelivered Mail Returned to Sender",
        sender=("Mail Delivery System", "MAILER-DAEMON@mx.example.org"),
        headers=[("Return-Path", "<>")],
    )
    verdict = check(raw, ON_TIME)
    assert codes(verdict) == ["bounce"]
    assert "MAILER-DAEMON" in verdict["problems"][0]["message"]
    assert "Return-Path" in verdict["problems"][0]["message"]


@pytest.mark.parametrize(
    "letter",
    [
        "Letter of commitment - University of Nairobi.pdf",
        "合作协议（签字版）.pdf",
        "外方承诺函.pdf",
        "MoU_Kasetsart.pdf",
        "邀请函.PDF",
    ],
)
def test_a_partners_letter_alone_is_a_missing_scan_not_a_misnamed_one(
    letter: str, check: CheckRunner
) -> None:
    files = [Att(f"{STEM}.docx", form_docx()), Att(letter, pdf_bytes())]
    verdict = check(build_mail("coremail", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "needs_correction"
    # The stamped scan is what is missing; the letter is the supporting material.
    assert codes(verdict) == ["missing_pdf"]
    message = verdict["problems"][0]
    assert f"「{STEM}.pdf」" in message["message_zh"]
    assert f"「{letter}」是证明材料" in message["message_zh"]
    assert f'"{letter}" is supporting material' in message["message_en"]
    assert "misnamed" not in message["message_en"]
    assert roles(verdict)[letter] == "supporting"


def test_a_scan_and_a_signed_agreement_name_only_the_scan(check: CheckRunner) -> None:
    files = [
        Att(f"{STEM}.docx", form_docx()),
        Att("扫描件.pdf", pdf_bytes()),
        Att("Cooperation Agreement signed.pdf", pdf_bytes()),
    ]
    verdict = check(build_mail("outlook", subject=SUBJECT, attachments=files), ON_TIME)
    assert codes(verdict) == ["attachment_name"]
    message = verdict["problems"][0]["message"]
    assert "扫描件.pdf" in message
    assert f"{STEM}.pdf" in message
    assert "Agreement" not in message
    assert roles(verdict)["扫描件.pdf"] == "pdf"
    assert roles(verdict)["Cooperation Agreement signed.pdf"] == "supporting"


def test_several_pdfs_that_could_be_the_scan_are_listed_and_one_is_asked_for(
    check: CheckRunner,
) -> None:
    files = [
        Att(f"{STEM}.docx", form_docx()),
        Att("scan1.pdf", pdf_bytes()),
        Att("scan2.pdf", pdf_bytes()),
        Att("合作协议.pdf", pdf_bytes()),
    ]
    verdict = check(build_mail("qqmail", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "needs_correction"
    assert codes(verdict) == ["pdf_ambiguous"]
    problem = verdict["problems"][0]
    assert "「scan1.pdf」「scan2.pdf」" in problem["message_zh"]
    assert f"「{STEM}.pdf」" in problem["message_zh"]
    assert '"scan1.pdf", "scan2.pdf"' in problem["message_en"]
    assert "合作协议" not in problem["message"]


def test_a_well_named_scan_is_taken_even_beside_a_letter(check: CheckRunner) -> None:
    files = [
        Att(f"{STEM}.docx", form_docx()),
        Att("Letter of support.pdf", pdf_bytes()),
        Att(f"{STEM}.pdf", pdf_bytes()),
    ]
    verdict = check(build_mail("gmail", subject=SUBJECT, attachments=files), ON_TIME)
    assert verdict["status"] == "accepted"
    assert codes(verdict) == []
