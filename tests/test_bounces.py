"""Bounces of our own replies: which reply came back, for which address.

The samples follow the shapes real servers send (Postfix, Exim, Exchange,
Gmail, qmail, a read receipt), with one of our replies as the returned mail.
"""

from __future__ import annotations

import email.message
import re
from collections import Counter
from email import message_from_bytes

import pytest

from mailbot.calls import Call
from mailbot.judge.checks import verdict_for
from mailbot.judge.verdict import Status
from mailbot.mail.bounces import (
    bounced_reply_ids,
    original_recipients,
    our_reply_ids,
    returned_message_ids,
)
from mailbot.mail.parsing import parse_message
from tests.conftest import SHARED

OURS = "<mailbot.0123456789abcdef0123456789abcdef@anso.org.cn>"
EARLIER = "<mailbot.ffffffffffffffffffffffffffffffff@anso.org.cn>"
APPLICANT = "<001b01d77d0a$f25c5000$12b9fc61$@ibcas.ac.cn>"

# Our reply as it left: answering the applicant, who had answered an earlier reply of ours.
OUR_REPLY_HEADERS = (
    'From: "ANSO Secretariat" <anso2021program@anso.org.cn>\r\n'
    "To: ZhangZhe@ibcas.ac.cn\r\n"
    "Subject: =?utf-8?b?5bey5pS25Yiw?=\r\n"
    "Date: Tue, 20 Jul 2021 10:00:30 +0800\r\n"
    f"Message-ID: {OURS}\r\n"
    f"In-Reply-To: {APPLICANT}\r\n"
    f"References: {EARLIER} {APPLICANT}\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "X-Auto-Response-Suppress: All\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: base64\r\n"
)

POSTFIX = (
    "Return-Path: <>\r\n"
    "From: MAILER-DAEMON@mx.ibcas.ac.cn (Mail Delivery System)\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "To: anso2021program@anso.org.cn\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    '\tboundary="8B1A11C0F0.1626746431/mx.ibcas.ac.cn"\r\n'
    "Message-Id: <20210720020031.8B1A11C0F0@mx.ibcas.ac.cn>\r\n"
    "\r\n"
    "This is a MIME-encapsulated message.\r\n"
    "\r\n"
    "--8B1A11C0F0.1626746431/mx.ibcas.ac.cn\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "This is the mail system at host mx.ibcas.ac.cn.\r\n"
    "\r\n"
    "<zhangzhe@ibcas.ac.cn>: user unknown\r\n"
    "\r\n"
    "--8B1A11C0F0.1626746431/mx.ibcas.ac.cn\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.ibcas.ac.cn\r\n"
    "X-Postfix-Queue-ID: 8B1A11C0F0\r\n"
    "Arrival-Date: Tue, 20 Jul 2021 10:00:31 +0800 (CST)\r\n"
    "\r\n"
    "Final-Recipient: rfc822; zhangzhe@ibcas.ac.cn\r\n"
    "Original-Recipient: rfc822;ZhangZhe@ibcas.ac.cn\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Diagnostic-Code: X-Postfix; user unknown\r\n"
    "\r\n"
    "--8B1A11C0F0.1626746431/mx.ibcas.ac.cn\r\n"
    "Content-Description: Undelivered Message\r\n"
    "Content-Type: {returned}\r\n"
    "\r\n"
    f"{OUR_REPLY_HEADERS}"
    "{body}"
    "--8B1A11C0F0.1626746431/mx.ibcas.ac.cn--\r\n"
)

EXIM = (
    "Return-path: <>\r\n"
    "X-Failed-Recipients: zhangzhe@ibcas.ac.cn\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "From: Mail Delivery System <Mailer-Daemon@mail.ibcas.ac.cn>\r\n"
    "To: anso2021program@anso.org.cn\r\n"
    "Subject: Mail delivery failed: returning message to sender\r\n"
    "Message-Id: <E1m5Xyz-0001Ab-Cd@mail.ibcas.ac.cn>\r\n"
    "Date: Tue, 20 Jul 2021 10:00:31 +0800\r\n"
    "\r\n"
    "This message was created automatically by mail delivery software.\r\n"
    "\r\n"
    "A message that you sent could not be delivered to one or more of its\r\n"
    "recipients. This is a permanent error. The following address(es) failed:\r\n"
    "\r\n"
    "  zhangzhe@ibcas.ac.cn\r\n"
    "    Unrouteable address\r\n"
    "\r\n"
    "------ This is a copy of the message, including all the headers. ------\r\n"
    "\r\n"
    f"{OUR_REPLY_HEADERS}"
    "\r\n"
    "5bey5pS25Yiw\r\n"
)

EXCHANGE = (
    "From: Microsoft Outlook <postmaster@ibcas.partner.onmicrosoft.com>\r\n"
    "To: <anso2021program@anso.org.cn>\r\n"
    "Subject: Undeliverable: =?utf-8?b?5bey5pS25Yiw?=\r\n"
    "Date: Tue, 20 Jul 2021 02:00:31 +0000\r\n"
    "Message-ID: <0a1b2c3d-4e5f@AM0PR01MB0001.eurprd01.prod.outlook.com>\r\n"
    f"In-Reply-To: {OURS}\r\n"
    f"References: {OURS}\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    '\tboundary="_000_0a1b2c3d_"\r\n'
    "MIME-Version: 1.0\r\n"
    "\r\n"
    "--_000_0a1b2c3d_\r\n"
    'Content-Type: multipart/alternative; boundary="_002_0a1b2c3d_"\r\n'
    "\r\n"
    "--_002_0a1b2c3d_\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Delivery has failed to these recipients or groups:\r\n"
    "\r\n"
    "--_002_0a1b2c3d_--\r\n"
    "\r\n"
    "--_000_0a1b2c3d_\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns;AM0PR01MB0001.eurprd01.prod.outlook.com\r\n"
    "Received-From-MTA: dns;mx.anso.org.cn\r\n"
    "\r\n"
    "Original-Recipient: rfc822;ZhangZhe@IBCAS.ac.cn\r\n"
    "Final-Recipient: rfc822;\r\n"
    " zhangzhe@ibcas.partner.onmicrosoft.com\r\n"
    "Action: failed\r\n"
    "Status: 5.1.10\r\n"
    "\r\n"
    "--_000_0a1b2c3d_\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    f"{OUR_REPLY_HEADERS}"
    "\r\n"
    "--_000_0a1b2c3d_--\r\n"
)

# Gmail and others that quote nothing name the returned mail only by threading it.
THREADED = (
    "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
    "To: anso2021program@anso.org.cn\r\n"
    "Subject: Delivery Status Notification (Failure)\r\n"
    f"In-Reply-To: {OURS}\r\n"
    f"References: {APPLICANT} {OURS}\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Your message wasn't delivered to zhangzhe@ibcas.ac.cn because the address couldn't be found.\r\n"
)

QMAIL = (
    "Return-Path: <>\r\n"
    "From: MAILER-DAEMON@mail.example.cn\r\n"
    "To: anso2021program@anso.org.cn\r\n"
    "Subject: failure notice\r\n"
    "\r\n"
    "Hi. This is the qmail-send program at mail.example.cn.\r\n"
    "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    "\r\n"
    "<zhangzhe@ibcas.ac.cn>:\r\n"
    "Sorry, no mailbox here by that name. (#5.1.1)\r\n"
    "\r\n"
    "--- Below this line is a copy of the message.\r\n"
    "\r\n"
    f"{OUR_REPLY_HEADERS}"
    "\r\n"
    "5bey5pS25Yiw\r\n"
)

READ_RECEIPT = (
    "From: 张喆 <zhangzhe@ibcas.ac.cn>\r\n"
    "To: anso2021program@anso.org.cn\r\n"
    "Subject: =?utf-8?b?5bey6K+7?=: =?utf-8?b?5bey5pS25Yiw?=\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=disposition-notification; boundary="m"\r\n'
    "\r\n"
    "--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n您的邮件已被阅读。\r\n"
    "--m\r\nContent-Type: message/disposition-notification\r\n\r\n"
    "Reporting-UA: Foxmail\r\n"
    "Final-Recipient: rfc822;zhangzhe@ibcas.ac.cn\r\n"
    f"Original-Message-ID: {OURS}\r\n"
    "Disposition: manual-action/MDN-sent-manually; displayed\r\n"
    "\r\n--m--\r\n"
)


def postfix(returned: str) -> str:
    body = "\r\n5bey5pS25Yiw\r\n" if returned == "message/rfc822" else "\r\n"
    return POSTFIX.replace("{returned}", returned).replace("{body}", body)


SHAPES = {
    "postfix-rfc822": postfix("message/rfc822"),
    "postfix-headers": postfix("text/rfc822-headers"),
    "exim": EXIM,
    "exchange": EXCHANGE,
    "gmail-threaded": THREADED,
    "qmail": QMAIL,
    "read-receipt": READ_RECEIPT,
}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_bounce_names_our_reply_and_not_the_earlier_one(shape: str) -> None:
    raw = SHAPES[shape].encode()
    assert bounced_reply_ids(parse_message(raw), raw) == [OURS]


@pytest.mark.parametrize("shape", ["postfix-rfc822", "exim", "gmail-threaded", "qmail"])
def test_the_message_alone_is_enough_where_the_parser_keeps_the_copy(shape: str) -> None:
    assert bounced_reply_ids(parse_message(SHAPES[shape].encode())) == [OURS]


@pytest.mark.parametrize(
    ("shape", "recipients"),
    [
        ("postfix-rfc822", ["zhangzhe@ibcas.ac.cn"]),
        ("postfix-headers", ["zhangzhe@ibcas.ac.cn"]),
        ("exim", ["zhangzhe@ibcas.ac.cn"]),
        ("exchange", ["zhangzhe@ibcas.ac.cn", "zhangzhe@ibcas.partner.onmicrosoft.com"]),
    ],
)
def test_the_recipients_the_bounce_could_not_reach(shape: str, recipients: list[str]) -> None:
    raw = SHAPES[shape].encode()
    assert original_recipients(parse_message(raw), raw) == recipients


@pytest.mark.parametrize("shape", [s for s in SHAPES if s != "read-receipt"])
def test_every_shape_is_judged_a_bounce(shape: str, call: Call) -> None:
    verdict = verdict_for(parse_message(SHAPES[shape].encode()), call)
    assert verdict.status is Status.IGNORED
    assert "bounce" in verdict.codes()


def test_a_bounce_of_someone_elses_mail_names_none_of_ours() -> None:
    raw = SHAPES["exim"].replace(OURS, "<abc@ibcas.ac.cn>").replace(EARLIER, "<d@e>").encode()
    message = parse_message(raw)
    assert bounced_reply_ids(message, raw) == []
    assert returned_message_ids(message, raw) == ["<abc@ibcas.ac.cn>"]


def test_our_reply_ids_are_recognised_however_written() -> None:
    upper = OURS.upper().replace("MAILBOT.", "mailbot.")
    assert our_reply_ids([f"x <a@b> {upper}", OURS, "<mailbot.123@anso.org.cn>"]) == [OURS]


def _corpus() -> list[bytes]:
    folder = SHARED / "corpora" / "sisimai-bounces"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the team's sample corpora are not beside this checkout")
    return [p.read_bytes() for p in sorted(folder.glob("*.eml"))]


def _quoted_id(raw: bytes) -> str | None:
    """The returned mail's Message-ID, as the standard library reads the quoted copy."""
    found = None
    for part in message_from_bytes(raw).walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                found = inner[0].get("message-id") or found
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found = message_from_bytes(payload).get("message-id") or found
    return found.strip() if found and re.fullmatch(r"\s*<[^<>\s]+>\s*", found) else None


@pytest.mark.slow
def test_every_real_bounce_gives_its_returned_mail_and_recipients() -> None:
    figures: Counter[str] = Counter()
    for raw in _corpus():
        message = parse_message(raw)
        figures["bounces"] += 1
        quoted = _quoted_id(raw)
        if quoted:
            figures["quoting a Message-ID"] += 1
            assert quoted in returned_message_ids(message, raw)
        fields = re.findall(
            r"(?im)^final-recipient:[^;\n]*;\s*<?([^\s<>;]+@[^\s<>;]+?)>?\s*$",
            raw.decode("latin-1"),
        )
        if fields:
            figures["with Final-Recipient"] += 1
            assert {f.lower() for f in fields} <= set(original_recipients(message, raw))
        if original_recipients(message, raw):
            figures["recipient found"] += 1
    print(f"\nsisimai-bounces: {dict(figures)}")
    assert figures["bounces"] == 314
