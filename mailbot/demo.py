"""`mailbot demo`: the whole pipeline on a sample Maildir, with SQLite and an outbox folder.

The sample is a small slice of a real call's last week (July 2021): good
proposals, misnamed files, a missing PDF later sent on its own, a corrected
resubmission, a late one, an out-of-office reply and a bounce. Receipt times
are the Maildir files' times, so the verdicts are the ones the call saw.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from mailbot.app import App
from mailbot.bundled import DEFAULT_CALL
from mailbot.calls import Call, load_call
from mailbot.cli.report import log_text
from mailbot.config import load_settings
from mailbot.documents.template import fill_form, focus_choices
from mailbot.errors import MailbotError
from mailbot.service.daemon import Daemon
from mailbot.sources.maildir import deliver

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
MAILBOX = "anso2021program@anso.org.cn"
MARKER = ".mailbot-demo"


@dataclass(frozen=True)
class Sample:
    when: datetime
    sender: tuple[str, str]
    subject: str
    files: tuple[tuple[str, bytes], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: str = "尊敬的ANSO秘书处：\n\n附件是我们的合作专项建议书及合作协议，请查收。\n"
    content_type: str = ""


def _pdf(text: str) -> bytes:
    """A small but well-formed one-page PDF."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _proposal(call: Call, institution: str, pi: str, title: str, focus: str) -> bytes:
    """The call's own form, filled in as a careful applicant would."""
    form = call.form
    focus_text = focus_choices(form, focus) if form is not None else focus
    return fill_form(
        call,
        {
            "title": title,
            "institution": institution,
            "pi": pi,
            "budget": "120万元",
            "period": "2022年1月-2024年12月",
            "focus_area": focus_text,
        },
        [
            (institution, "中国"),
            ("University of Nairobi", "Kenya"),
            ("Kasetsart University", "Thailand"),
            ("Mongolian Academy of Sciences", "Mongolia"),
        ],
    )


def _at(day: int, hour: int, minute: int) -> datetime:
    """A receipt time in the call's last July, Beijing time."""
    return datetime(2021, 7, day, hour, minute, tzinfo=BEIJING)


def _scan(institution: str, pi: str) -> bytes:
    """An applicant's signed and stamped scan: each applicant's own file."""
    mark = hashlib.sha256(f"{institution}+{pi}".encode()).hexdigest()[:12]
    return _pdf(f"signed and stamped {mark}")


def _agreement() -> tuple[str, bytes]:
    return ("合作协议（签字版）.pdf", _pdf("cooperation agreement"))


def _complete(
    call: Call, institution: str, pi: str, title: str, focus: str
) -> tuple[tuple[str, bytes], ...]:
    """A careful applicant's files: the Word form and the scan named as asked, the agreement."""
    return (
        (f"{institution}+{pi}.docx", _proposal(call, institution, pi, title, focus)),
        (f"{institution}+{pi}.pdf", _scan(institution, pi)),
        _agreement(),
    )


def samples(call: Call) -> list[Sample]:
    """The demo's mails, in the order the mailbox received them."""
    ibcas, zhang = "中国科学院植物研究所", "张喆"
    im, li = "中国科学院微生物研究所", "李娜"
    iap, wang = "中国科学院大气物理研究所", "王堃"
    sinh, chen = "中国科学院上海营养与健康研究所", "陈镕"
    kiz, zhao = "中国科学院昆明动物研究所", "赵磊"
    soil = "土壤微生物与粮食安全"
    return [
        Sample(
            _at(19, 9, 12),
            (zhang, "zhangzhe@ibcas.ac.cn"),
            f"合作专项建议书：{ibcas}+{zhang}",
            _complete(call, ibcas, zhang, "青藏高原作物耐旱基因资源挖掘", "food_security"),
        ),
        Sample(
            _at(21, 15, 40),
            (li, "lina@im.ac.cn"),
            f"合作专项建议书：{im}+{li}",
            (
                ("建议书final.docx", _proposal(call, im, li, soil, "food_security")),
                ("扫描件.pdf", _pdf("scan")),  # not named as asked: not the scan yet
                _agreement(),
            ),
        ),
        *_iap_in_two_parts(call, iap, wang),
        Sample(
            _at(24, 8, 55),
            (li, "lina@im.ac.cn"),
            f"回复：合作专项建议书：{im}+{li}",
            _complete(call, im, li, soil, "food_security"),
        ),
        Sample(
            _at(26, 11, 20),
            (zhao, "zhaolei@mail.kiz.ac.cn"),
            f"建议书-{kiz}-{zhao}",
            _complete(call, kiz, zhao, "跨境野生动物疫病监测", "life_health"),
        ),
        *_machine_mail(ibcas, zhang),
        Sample(
            _at(31, 8, 12),
            (chen, "chenrong@sinh.ac.cn"),
            f"合作专项建议书：{sinh}+{chen}",
            _complete(call, sinh, chen, "膳食干预与慢病防控", "life_health"),
        ),
    ]


def _iap_in_two_parts(call: Call, iap: str, wang: str) -> list[Sample]:
    """The Word form with a partner's letter first, the stamped scan sent on its own later."""
    return [
        Sample(
            _at(23, 10, 5),
            (wang, "wangkun@mail.iap.ac.cn"),
            f"Re: 合作专项建议书：{iap}+{wang}",
            (
                (
                    f"{iap}+{wang}.docx",
                    _proposal(call, iap, wang, "亚洲季风区碳中和路径", "low_carbon"),
                ),
                ("Letter of commitment - University of Nairobi.pdf", _pdf("letter")),
            ),
        ),
        Sample(
            _at(23, 17, 30),
            (wang, "wangkun@mail.iap.ac.cn"),
            f"合作专项建议书：{iap}+{wang}",
            ((f"{iap}+{wang}（盖章版）.pdf", _scan(iap, wang)),),
            body="秘书处老师好：\n\n补发签字盖章的 PDF 扫描件，请查收。\n",
        ),
    ]


def _machine_mail(ibcas: str, zhang: str) -> list[Sample]:
    """An out-of-office reply to an applicant's copy, and a bounce: never answered."""
    return [
        Sample(
            _at(27, 9, 0),
            ("Ahmed Khan", "ahmed.khan@example.edu.pk"),
            f"Automatic reply: 合作专项建议书：{ibcas}+{zhang}",
            headers=(("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")),
            body="I am out of the office until 2 August with limited access to e-mail.\n",
        ),
        Sample(
            _at(28, 14, 2),
            ("Mail Delivery System", "MAILER-DAEMON@mx.example.org"),
            "Undelivered Mail Returned to Sender",
            headers=(("Return-Path", "<>"),),
            body="This is the mail system at host mx.example.org.\n\nI'm sorry to have to "
            "inform you that your message could not be delivered.\n",
        ),
    ]


def build(sample: Sample) -> bytes:
    message = EmailMessage()
    name, address = sample.sender
    message["From"] = f"{name} <{address}>"
    message["To"] = MAILBOX
    message["Subject"] = sample.subject
    message["Date"] = format_datetime(sample.when)
    message["Message-ID"] = make_msgid(domain=address.rpartition("@")[2])
    for key, value in sample.headers:
        message[key] = value
    message.set_content(sample.body)
    for filename, data in sample.files:
        kind = (
            ("application", "pdf")
            if filename.endswith(".pdf")
            else ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")
        )
        message.add_attachment(data, maintype=kind[0], subtype=kind[1], filename=filename)
    return message.as_bytes()


def run_demo(directory: Path) -> str:
    """Write the sample Maildir, run the pipeline once, and return the intake log."""
    if directory.exists():
        if not (directory / MARKER).exists():
            raise MailbotError(
                f"{directory} exists and is not a mailbot demo: choose another --dir"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("written by mailbot demo; removed by the next demo run\n")
    call = load_call(DEFAULT_CALL)
    mails = samples(call)
    for sample in mails:
        deliver(directory / "Maildir", build(sample), sample.when)
    config = directory / "mailbot.toml"
    config.write_text(
        "# Settings of the demo; paths are read against this file's folder.\n"
        f'rules = "{DEFAULT_CALL}"  # the call shipped with mailbot\n'
        'database_url = "sqlite:///mailbot.sqlite3"\n'
        'store_dir = "store"\n\n'
        '[source]\nkind = "maildir"\n\n[source.maildir]\npath = "Maildir"\n\n'
        '[replies]\ntransport = "outbox_dir"\noutbox_dir = "outbox"\n',
        encoding="utf-8",
    )
    app = App.build(load_settings(config))
    app.db.upgrade()
    polled, sent = Daemon(app).once()
    with app.db.transaction() as session:
        log = log_text(session, app.call)
    outbox = sorted(app.outbox_dir.glob("*.eml"))
    return "\n".join(
        [
            f"demo: {len(mails)} applicant mails delivered to {directory / 'Maildir'}",
            f"fetched: {polled.summary()}",
            f"replies: {sent}; {len(outbox)} written to {directory / 'outbox'}",
            "",
            log,
            "",
            "Look closer:",
            f"  mailbot --config {config} show ANSO2021-0002",
            f"  mailbot --config {config} export {directory / 'intake.xlsx'}",
        ]
    )
