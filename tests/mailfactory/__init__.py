"""Build raw sample mails (bytes) that imitate what real mail clients send, for parser tests.

`build_mail(client, subject=..., attachments=[Att(...)])` writes a mail as one
of CLIENTS puts it on the wire. The package holds one module per job:

- base.py: Att (an attachment), the MIME tree, the Client every imitation extends;
- encoders.py: content types, encoded words, RFC 2231 parameters, folding, dates;
- outlook.py, foxmail.py, qqmail.py, coremail.py, gmail.py, applemail.py, raw.py:
  one client each (raw.py: senders of raw 8-bit UTF-8 or GBK headers);
- calendar.py: meeting invitations (text/calendar, method=REQUEST) from Outlook and Gmail;
- documents.py: pdf_bytes and docx_bytes, small valid files to attach;
- broken.py: applicant mails broken on purpose.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import datetime

from tests.mailfactory.applemail import AppleMail
from tests.mailfactory.base import DEFAULT_DATE, Att, Client, Ctx
from tests.mailfactory.coremail import Coremail
from tests.mailfactory.foxmail import Foxmail
from tests.mailfactory.gmail import Gmail
from tests.mailfactory.outlook import Outlook
from tests.mailfactory.qqmail import QQMail
from tests.mailfactory.raw import RawGBK, RawUTF8

__all__ = ["CLIENTS", "SAMPLE_STEM", "SAMPLE_SUBJECT", "build_mail"]

CLIENTS: tuple[str, ...] = (
    "outlook",
    "foxmail",
    "qqmail",
    "coremail",
    "gmail",
    "applemail",
    "raw_utf8",
    "raw_gbk",
)

SAMPLE_STEM = "中国科学院植物研究所+张喆"
SAMPLE_SUBJECT = f"合作专项建议书：{SAMPLE_STEM}"

# A per-process sequence makes every mail's Message-ID and boundaries unique,
# while string seeds keep a test run reproducible (str seeds are not hash-randomised).
_SEQ = itertools.count(1)

_CLIENT_CLASSES: dict[str, type[Client]] = {
    "outlook": Outlook,
    "foxmail": Foxmail,
    "qqmail": QQMail,
    "coremail": Coremail,
    "gmail": Gmail,
    "applemail": AppleMail,
    "raw_utf8": RawUTF8,
    "raw_gbk": RawGBK,
}


def build_mail(
    client: str,
    *,
    subject: str,
    attachments: Sequence[Att] = (),
    sender: tuple[str, str] = ("张喆", "zhangzhe@ibcas.ac.cn"),
    to: str = "anso2021program@anso.org.cn",
    date: datetime | None = None,
    received_at: datetime | None = None,
    body: str = "您好，附件是我们的合作专项建议书，请查收。",
    reply_to: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A complete RFC 5322 message, CRLF line endings, as client would put it on the wire.

    Attachments without inline_cid become ordinary attachments; an empty
    content_type is guessed from the extension, except that Foxmail and QQ Mail
    label every attachment application/octet-stream as those clients do.
    """
    if client not in _CLIENT_CLASSES:
        raise ValueError(f"unknown client {client!r}; expected one of {CLIENTS}")
    when = date or DEFAULT_DATE
    for dt in (when, received_at):
        if dt is not None and (dt.tzinfo is None or dt.utcoffset() is None):
            raise ValueError("date and received_at must be timezone-aware")
    ctx = Ctx(
        client=client,
        rng=random.Random(f"{client}|{subject}|{next(_SEQ)}"),
        subject=subject,
        sender=sender,
        to=to,
        date=when,
        received_at=received_at,
        body=body,
        reply_to=reply_to,
        message_id=message_id,
        in_reply_to=in_reply_to,
        extra=headers,
    )
    return _CLIENT_CLASSES[client](ctx).build(attachments)
