"""Meeting invitations as Outlook and Gmail send them: a text/calendar part, method=REQUEST.

Outlook sends multipart/alternative with the text, the HTML and the
text/calendar part (base64, ``method=REQUEST``); Gmail the same inside
multipart/mixed, the calendar part in 7bit, and the event again as an
``invite.ics`` attachment (application/ics).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from tests.mailfactory.base import DEFAULT_DATE, Att, Client, Ctx, Part
from tests.mailfactory.encoders import b64_body, crlf
from tests.mailfactory.gmail import Gmail
from tests.mailfactory.outlook import Outlook

INVITATION_CLIENTS = ("outlook", "gmail")


def ics(organiser: str, attendee: str, summary: str, start: datetime, prodid: str) -> bytes:
    """One VEVENT as an iTIP REQUEST (RFC 5546), CRLF lines."""
    stamp = "%Y%m%dT%H%M%S"
    end = start + timedelta(hours=1)
    lines = [
        "BEGIN:VCALENDAR",
        "METHOD:REQUEST",
        f"PRODID:{prodid}",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        f"ORGANIZER;CN={organiser}:mailto:{organiser}",
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN={attendee}:"
        f"mailto:{attendee}",
        f"SUMMARY;LANGUAGE=zh-CN:{summary}",
        f"DTSTART;TZID=China Standard Time:{start.strftime(stamp)}",
        f"DTEND;TZID=China Standard Time:{end.strftime(stamp)}",
        f"UID:040000008200E00074C5B7101A82E008000000{start.strftime('%Y%m%d')}@example",
        "SEQUENCE:0",
        "STATUS:CONFIRMED",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return crlf("\n".join(lines)).encode("utf-8")


class _Invitation(Client):
    prodid = ""

    def event(self) -> bytes:
        start = self.ctx.date + timedelta(days=2)
        return ics(self.ctx.sender[1], self.ctx.to, self.ctx.subject, start, self.prodid)


class OutlookInvitation(_Invitation, Outlook):
    prodid = "Microsoft Exchange Server 2010"

    def tree(self, atts: Sequence[Att], inlines: Sequence[Att]) -> Part:
        calendar = Part(
            headers=[
                'Content-Type: text/calendar; charset="utf-8"; method=REQUEST',
                "Content-Transfer-Encoding: base64",
            ],
            body=b64_body(self.event()),
        )
        return self.multipart(
            "alternative",
            [
                self.text_part(self.ctx.body, "plain"),
                self.text_part(self.html(self.ctx.body, []), "html"),
                calendar,
            ],
        )


class GmailInvitation(_Invitation, Gmail):
    prodid = "-//Google Inc//Google Calendar 70.9054//EN"

    def tree(self, atts: Sequence[Att], inlines: Sequence[Att]) -> Part:
        event = self.event()
        calendar = Part(
            headers=[
                'Content-Type: text/calendar; charset="UTF-8"; method=REQUEST',
                "Content-Transfer-Encoding: 7bit",
            ],
            body=event,
        )
        alternative = self.multipart(
            "alternative",
            [
                self.text_part(self.ctx.body, "plain"),
                self.text_part(self.html(self.ctx.body, []), "html"),
                calendar,
            ],
        )
        invite = Part(
            headers=[
                'Content-Type: application/ics; name="invite.ics"',
                'Content-Disposition: attachment; filename="invite.ics"',
                "Content-Transfer-Encoding: base64",
            ],
            body=b64_body(event),
        )
        return self.multipart("mixed", [alternative, invite])


def build_invitation(
    client: str,
    *,
    subject: str = "ANSO 合作专项申报讨论会",
    sender: tuple[str, str] = ("张喆", "zhangzhe@ibcas.ac.cn"),
    to: str = "anso2021program@anso.org.cn",
    date: datetime | None = None,
    body: str = "邀请您参加项目申报讨论会。",
) -> bytes:
    """A meeting invitation from ``client`` ("outlook" or "gmail"), as it puts one on the wire."""
    classes: dict[str, type[Client]] = {"outlook": OutlookInvitation, "gmail": GmailInvitation}
    ctx = Ctx(
        client=client,
        rng=random.Random(f"invitation|{client}|{subject}"),
        subject=subject,
        sender=sender,
        to=to,
        date=date or DEFAULT_DATE,
        received_at=None,
        body=body,
        reply_to=None,
        message_id=None,
        in_reply_to=None,
        extra=(),
    )
    return classes[client](ctx).build([])
