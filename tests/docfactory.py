"""Build the Word proposal forms applicants send, and hostile Word/PDF files, as bytes."""

from __future__ import annotations

import base64
import functools
import io
import random
import struct
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as _xml_escape

import docx
from docx.document import Document
from docx.table import Table
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, ByteStringObject

from tests.mailfactory.documents import seal_ops

__all__ = [
    "FIELD_KEYS",
    "HEADING",
    "LABELS",
    "LABEL_SETS",
    "OLE_MAGIC",
    "PDF_PASSWORD",
    "STYLES",
    "Form",
    "Partner",
    "billion_laughs_docx",
    "corrupt_pdf",
    "docm_bytes",
    "encrypted_docx",
    "encrypted_pdf",
    "external_entity_docx",
    "fake_pdf",
    "form_docx",
    "internal_entity_docx",
    "legacy_doc_bytes",
    "non_word_zip",
    "not_a_zip_docx",
    "partner_header",
    "pdf_pages_bytes",
    "zip_bomb_docx",
]

HEADING = "ANSO 2021 联合研究合作专项建议书"
PDF_PASSWORD = "anso2021"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

FIELD_KEYS: tuple[str, ...] = ("title", "institution", "pi", "budget", "period", "focus_area")
LABEL_SETS: tuple[str, ...] = ("zh", "en", "bilingual", "messy")
STYLES: tuple[str, ...] = ("table", "paragraphs", "merged", "nested")

# Label text exactly as it is written into the document, so tests can assert on it.
LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "项目名称",
        "institution": "牵头单位",
        "pi": "项目负责人",
        "budget": "申请经费（万元）",
        "period": "执行期限",
        "focus_area": "资助领域",
    },
    "en": {
        "title": "Project Title",
        "institution": "Lead Institution",
        "pi": "Principal Investigator",
        "budget": "Requested Funding (10k CNY)",
        "period": "Project Period",
        "focus_area": "Focus Area",
    },
    "bilingual": {
        "title": "项目名称 Project Title",
        "institution": "牵头单位 Lead Institution",
        "pi": "项目负责人 Principal Investigator",
        "budget": "申请经费（万元） Requested Funding (10k CNY)",
        "period": "执行期限 Project Period",
        "focus_area": "资助领域 Focus Area",
    },
    # What hand-edited forms look like: spaced-out characters, a colon typed into the
    # label cell, half-width brackets, one label switched to English, brackets mixed.
    "messy": {
        "title": "项 目 名 称",
        "institution": "牵头单位 ：",
        "pi": "Principal  Investigator:",
        "budget": "申请经费(万元)",
        "period": "执行期限（Project Period) :",
        "focus_area": "资助  领域：",
    },
}

_PARTNER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("序号", "No."),
    ("单位名称", "Institution"),
    ("国家", "Country"),
    ("角色", "Role"),
)
_LEAD_ROLE = "牵头单位/Lead"
_PARTNER_ROLE = "合作单位/Partner"
_PARTNERS_CAPTION = "合作单位 Partner Institutions"

# Word writes 1980-01-01 into zip entries; a fixed time also makes every build byte-identical.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_DOCM_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/word/document.xml" ContentType="{_DOCX_MAIN}"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)


@dataclass
class Partner:
    name: str
    country: str


def _default_partners() -> list[Partner]:
    return [
        Partner("University of Nairobi", "Kenya"),
        Partner("Kasetsart University", "Thailand"),
        Partner("中国农业大学", "中国"),
    ]


@dataclass
class Form:
    """One applicant's filled-in annex-2 form and the way it was laid out."""

    title: str = "青藏高原作物耐旱基因资源挖掘与利用"
    institution: str = "中国科学院植物研究所"
    pi: str = "张喆"
    # Written as the applicant writes it: "120", "120万元", "120.5万", "1,200,000元".
    budget: str = "120"
    # Or "2022.01-2024.12", "2022-01 至 2024-12", "2022/1–2024/12".
    period: str = "2022年1月-2024年12月"
    # Plain text ("粮食安全", "Life and Health") or ticked boxes (☑ ☒ ■ √ ✓ ✔ / □ ☐).
    focus: str = "☑粮食安全 □生命健康 □低碳环保"
    partners: list[Partner] = field(default_factory=_default_partners)
    labels: str = "bilingual"
    style: str = "table"
    lead_in_partners: bool = False
    empty_partner_rows: int = 2
    omit: tuple[str, ...] = ()

    def values(self) -> dict[str, str]:
        """Field key -> value as written, for the fields not omitted, in form order."""
        every = {
            "title": self.title,
            "institution": self.institution,
            "pi": self.pi,
            "budget": self.budget,
            "period": self.period,
            "focus_area": self.focus,
        }
        return {key: value for key, value in every.items() if key not in self.omit}


def partner_header(style: str) -> list[str]:
    """The partners table's header cells as form_docx writes them for `style`."""
    # Both spellings occur in real forms: a slash, or the English on a second line.
    sep = "/" if style in ("table", "paragraphs") else "\n"
    return [f"{zh}{sep}{en}" for zh, en in _PARTNER_COLUMNS]


# ---------------------------------------------------------------------------
# the proposal form


def _check_form(form: Form) -> None:
    if form.labels not in LABEL_SETS:
        raise ValueError(f"labels must be one of {LABEL_SETS}, not {form.labels!r}")
    if form.style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {form.style!r}")
    unknown = set(form.omit) - set(FIELD_KEYS)
    if unknown:
        raise ValueError(f"unknown field keys in omit: {sorted(unknown)}")
    if form.empty_partner_rows < 0:
        raise ValueError("empty_partner_rows must be >= 0")


def _partner_rows(form: Form) -> list[list[str]]:
    rows: list[list[str]] = []
    if form.lead_in_partners:
        rows.append([form.institution, "中国", _LEAD_ROLE])
    rows.extend([p.name, p.country, _PARTNER_ROLE] for p in form.partners)
    numbered = [[str(n), *row] for n, row in enumerate(rows, start=1)]
    # Blank printed rows keep their pre-printed number and nothing else.
    for n in range(len(rows) + 1, len(rows) + 1 + form.empty_partner_rows):
        numbered.append([str(n), "", "", ""])
    return numbered


def _fill_partners(table: Table, form: Form) -> None:
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, partner_header(form.style), strict=True):
        cell.text = text
    for row, values in zip(table.rows[1:], _partner_rows(form), strict=True):
        for cell, text in zip(row.cells, values, strict=True):
            if text:
                cell.text = text


def _fill_fields(table: Table, form: Form, merged: bool) -> None:
    table.style = "Table Grid"
    labels = LABELS[form.labels]
    for index, (row, (key, value)) in enumerate(
        zip(table.rows, form.values().items(), strict=True)
    ):
        cells = row.cells
        cells[0].text = labels[key]
        if merged:
            # Alternate 3- and 2-column spans: both occur in Word forms, and a 2-span
            # leaves a trailing empty cell a reader must not take for the value.
            span_end = 3 if index % 2 == 0 else 2
            cells[1].merge(cells[span_end]).text = value
        else:
            cells[1].text = value


def _add_field_paragraphs(doc: Document, form: Form) -> None:
    labels = LABELS[form.labels]
    for index, (key, value) in enumerate(form.values().items()):
        label = labels[key]
        if label.rstrip().endswith((":", "：")):
            lead = label
        elif form.labels == "en":
            lead = f"{label}: "
        else:
            # Applicants mix full- and half-width colons within one form.
            lead = f"{label}{'：' if index % 2 == 0 else ':'}"
        paragraph = doc.add_paragraph()
        paragraph.add_run(lead).bold = True
        # The value gets its own run, as Word does after the applicant types into a template.
        paragraph.add_run(value)


def _pack(entries: Iterable[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _repack(
    data: bytes,
    replace: Mapping[str, bytes] | None = None,
    add: Mapping[str, bytes] | None = None,
) -> bytes:
    """Rewrite a zip with fixed timestamps, some members replaced and some appended."""
    replace = replace or {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = [
            (i.filename, replace[i.filename] if i.filename in replace else zf.read(i))
            for i in zf.infolist()
        ]
    return _pack([*entries, *(add or {}).items()])


def form_docx(form: Form | None = None) -> bytes:
    """The annex-2 proposal form as a .docx built with python-docx, laid out per form.style.

    Each form is built once a session: the bytes are the same every time (fixed zip times),
    and the pipeline tests attach the same few forms hundreds of times."""
    return _form_docx_of(repr(form or Form()), form or Form())


_BUILT: dict[str, bytes] = {}


def _form_docx_of(key: str, form: Form) -> bytes:
    # Keyed by the form's repr: Form holds a list, so it is not hashable, and a test may change
    # a Form after building from it.
    if key not in _BUILT:
        _BUILT[key] = _build_form_docx(form)
    return _BUILT[key]


def _build_form_docx(form: Form) -> bytes:
    _check_form(form)
    doc = docx.Document()
    doc.add_heading(HEADING, level=1)
    n_fields = len(form.values())
    n_partner_rows = 1 + len(_partner_rows(form))
    if form.style == "paragraphs":
        _add_field_paragraphs(doc, form)
        doc.add_paragraph(_PARTNERS_CAPTION)
        _fill_partners(doc.add_table(rows=n_partner_rows, cols=4), form)
    elif form.style in ("table", "merged"):
        merged = form.style == "merged"
        _fill_fields(doc.add_table(rows=n_fields, cols=4 if merged else 2), form, merged)
        doc.add_paragraph(_PARTNERS_CAPTION)
        _fill_partners(doc.add_table(rows=n_partner_rows, cols=4), form)
    else:
        # Templates drawn as a bordered page: one 1x1 layout table holds the whole form,
        # so neither inner table is in Document.tables.
        frame = doc.add_table(rows=1, cols=1)
        cell = frame.cell(0, 0)
        cell.paragraphs[0].text = "一、基本信息 Basic Information"
        _fill_fields(cell.add_table(rows=n_fields, cols=2), form, merged=False)
        cell.add_paragraph(_PARTNERS_CAPTION)
        _fill_partners(cell.add_table(rows=n_partner_rows, cols=4), form)
    buf = io.BytesIO()
    doc.save(buf)
    # python-docx stamps zip entries with the current time; repacking makes bytes reproducible.
    return _repack(buf.getvalue())


# ---------------------------------------------------------------------------
# hostile and broken Word files


def _document_xml(body: str, doctype: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        f"{doctype}"
        f'<w:document xmlns:w="{_W_NS}"><w:body>{body}<w:sectPr/></w:body></w:document>'
    ).encode()


def _paragraph(text: str) -> str:
    # Callers pass entity references through, so only "<" needs escaping here.
    return f'<w:p><w:r><w:t xml:space="preserve">{text.replace("<", "&lt;")}</w:t></w:r></w:p>'


def _minimal_docx(document_xml: bytes) -> bytes:
    return _pack(
        [
            ("[Content_Types].xml", _CONTENT_TYPES.encode()),
            ("_rels/.rels", _ROOT_RELS.encode()),
            ("word/document.xml", document_xml),
        ]
    )


@functools.cache
def zip_bomb_docx(uncompressed_mb: int = 300) -> bytes:
    """A .docx whose word/document.xml inflates to at least `uncompressed_mb` MiB.

    Built once a session per size (about a second for 300 MiB): the bytes are the same
    every time, and test_form and test_docfactory both attach the 300 MiB one."""
    if uncompressed_mb < 1:
        raise ValueError("uncompressed_mb must be >= 1")
    head = _document_xml(_paragraph(f"{LABELS['zh']['title']}：{Form().title}")).split(
        b"<w:sectPr/>"
    )[0]
    tail = b"<w:sectPr/></w:body></w:document>"
    # Empty paragraphs, not one giant text node (lxml refuses those by itself): a reader
    # that inflates and parses this builds ~50 million elements. The 6-byte period also
    # deflates about twice as well as a longer unit (distance 6 costs one extra bit).
    unit = b"<w:p/>"
    chunk = unit * ((1 << 20) // len(unit))
    target = uncompressed_mb << 20
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _ROOT_RELS)):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode())
        info = zipfile.ZipInfo("word/document.xml", date_time=_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        # Streaming in 1 MiB chunks keeps memory flat; zip64 because callers may ask > 4 GiB.
        with zf.open(info, "w", force_zip64=True) as member:
            member.write(head)
            written = len(head)
            while written + len(tail) < target:
                member.write(chunk)
                written += len(chunk)
            member.write(tail)
    return buf.getvalue()


def billion_laughs_docx() -> bytes:
    """word/document.xml declares lol1..lol9, each ten of the previous, and uses &lol9;."""
    entities = ['<!ENTITY lol "lol">']
    for n in range(1, 10):
        previous = f"&lol{n - 1};" if n > 1 else "&lol;"
        entities.append(f'<!ENTITY lol{n} "{previous * 10}">')
    doctype = f"<!DOCTYPE w:document [{''.join(entities)}]>"
    return _minimal_docx(_document_xml(_paragraph("项目名称：&lol9;"), doctype))


def external_entity_docx() -> bytes:
    """word/document.xml pulls file:///etc/passwd into a w:t through an external entity."""
    doctype = '<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return _minimal_docx(_document_xml(_paragraph("项目名称：&xxe;"), doctype))


def internal_entity_docx() -> bytes:
    """The default form, with the 项目名称 value given through the internal entity &title;."""
    form = Form()
    data = form_docx(form)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        xml = zf.read("word/document.xml").decode()
    value = f">{_xml_escape(form.title)}</w:t>"
    assert xml.count(value) == 1, "the title must be one run to swap it for an entity"
    declaration, sep, rest = xml.partition("?>")
    doctype = f'\n<!DOCTYPE w:document [<!ENTITY title "{_xml_escape(form.title)}">]>'
    xml = declaration + sep + doctype + rest.replace(value, ">&title;</w:t>")
    return _repack(data, replace={"word/document.xml": xml.encode()})


def _cfb_siblings(names: list[str], no_stream: int) -> tuple[int, list[int], list[int]]:
    """The root's child and each stream's left and right sibling, as directory ids.

    Siblings form a binary search tree ordered by (name length, upper-cased name);
    a balanced tree coloured all black is what simple writers emit and readers accept.
    """
    order = sorted(range(len(names)), key=lambda i: (len(names[i]), names[i].upper()))
    left = [no_stream] * len(names)
    right = [no_stream] * len(names)

    def build(lo: int, hi: int) -> int:
        if lo >= hi:
            return no_stream
        mid = (lo + hi) // 2
        left[order[mid]] = build(lo, mid)
        right[order[mid]] = build(mid + 1, hi)
        return order[mid] + 1  # directory id; the root entry is id 0

    return build(0, len(names)), left, right


def _cfb(streams: list[tuple[str, bytes]], clsid: bytes = b"\0" * 16) -> bytes:
    """A version-3 OLE2 compound file holding `streams` under the root storage.

    Every stream must be at least 4096 bytes: smaller ones belong in the mini stream,
    which this writer does not build.
    """
    sector = 512
    free, end, fat_mark, no_stream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    for name, data in streams:
        if len(data) < 4096:
            raise ValueError(f"stream {name!r} is under the 4096-byte mini-stream cutoff")
    n_dir = -(-(1 + len(streams)) // 4)
    n_data = [-(-len(data) // sector) for _, data in streams]
    n_fat = 1
    while n_fat * (sector // 4) < n_fat + n_dir + sum(n_data):
        n_fat += 1
    if n_fat > 109:
        raise ValueError("too large for a header-only DIFAT")

    fat: list[int] = [fat_mark] * n_fat
    first_dir = len(fat)
    fat += [*range(first_dir + 1, first_dir + n_dir), end]
    starts: list[int] = []
    for count in n_data:
        starts.append(len(fat))
        fat += [*range(len(fat) + 1, len(fat) + count), end]
    fat += [free] * (n_fat * (sector // 4) - len(fat))

    child, left, right = _cfb_siblings([name for name, _ in streams], no_stream)

    def entry(name: str, kind: int, lsib: int, rsib: int, kid: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return struct.pack(
            "<64sHBBIII16sIQQIQ",
            raw,
            len(raw),
            kind,
            1,  # black
            lsib,
            rsib,
            kid,
            clsid if kind == 5 else b"\0" * 16,
            0,
            0,
            0,
            start,
            size,
        )

    directory = entry("Root Entry", 5, no_stream, no_stream, child, end, 0)
    for i, (name, data) in enumerate(streams):
        directory += entry(name, 2, left[i], right[i], no_stream, starts[i], len(data))
    unused = struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, *(no_stream,) * 3, b"", 0, 0, 0, 0, 0)
    directory += unused * (n_dir * 4 - 1 - len(streams))

    difat = [*range(n_fat), *[free] * (109 - n_fat)]
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I",
        OLE_MAGIC,
        b"\0" * 16,
        0x003E,  # minor version
        0x0003,  # major version 3: 512-byte sectors
        0xFFFE,  # little-endian byte order mark
        9,  # sector shift
        6,  # mini sector shift
        b"\0" * 6,
        0,  # directory sectors: always 0 in version 3
        n_fat,
        first_dir,
        0,  # transaction signature
        4096,  # mini stream cutoff
        end,  # no mini FAT
        0,
        end,  # no DIFAT sectors
        0,
        *difat,
    )
    body = struct.pack(f"<{len(fat)}I", *fat) + directory
    for _, data in streams:
        body += data + b"\0" * (-len(data) % sector)
    return header + body


def _random_bytes(seed: str, n: int) -> bytes:
    # A str seed is hashed with SHA-512, so the bytes are the same in every run.
    return random.Random(seed).randbytes(n)


def encrypted_docx() -> bytes:
    """What Word saves for a password-protected .docx: an OLE2 file with EncryptionInfo
    (agile, AES-256/SHA-512 descriptor) and EncryptedPackage streams."""

    def b64(seed: str, n: int) -> str:
        return base64.b64encode(_random_bytes(seed, n)).decode()

    algo = (
        'saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
        'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512"'
    )
    descriptor = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" '
        'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
        f'<keyData {algo} saltValue="{b64("keydata", 16)}"/>'
        f'<dataIntegrity encryptedHmacKey="{b64("hmackey", 64)}" '
        f'encryptedHmacValue="{b64("hmacvalue", 64)}"/>'
        '<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/'
        f'keyEncryptor/password"><p:encryptedKey spinCount="100000" {algo} '
        f'saltValue="{b64("salt", 16)}" encryptedVerifierHashInput="{b64("input", 16)}" '
        f'encryptedVerifierHashValue="{b64("hash", 64)}" '
        f'encryptedKeyValue="{b64("key", 32)}"/></keyEncryptor></keyEncryptors></encryption>'
    ).encode()
    # Version 4.4 with the "agile" flag 0x40, then the XML descriptor; trailing
    # whitespace lifts the stream over the mini-stream cutoff and is legal after XML.
    info = struct.pack("<HHI", 4, 4, 0x40) + descriptor
    info += b" " * (4096 - len(info))
    plain_size = 23_456
    package = struct.pack("<Q", plain_size) + _random_bytes("package", -(-plain_size // 16) * 16)
    return _cfb([("EncryptionInfo", info), ("EncryptedPackage", package)])


def legacy_doc_bytes() -> bytes:
    """A Word 97-2003 .doc: OLE2 with a WordDocument stream starting with a FIB, and 1Table."""
    # wIdent 0xA5EC and nFib 0x00C1 mark Word 97+; lid 0x0804 is zh-CN; flag 0x0200 says
    # the table stream is "1Table".
    fib = struct.pack("<HHHHHH", 0xA5EC, 0x00C1, 0, 0x0804, 0, 0x0200)
    word = fib + b"\0" * (4096 - len(fib))
    # CLSID {00020906-0000-0000-C000-000000000046}: Word.Document.8.
    clsid = struct.pack("<IHH8s", 0x00020906, 0, 0, b"\xc0\0\0\0\0\0\0\x46")
    return _cfb([("WordDocument", word), ("1Table", b"\0" * 4096)], clsid)


def not_a_zip_docx() -> bytes:
    """4 KiB of random bytes, as when a mail client mangles an attachment named .docx."""
    data = _random_bytes("not-a-zip", 4096)
    assert not data.startswith((b"PK", OLE_MAGIC))
    return data


def non_word_zip() -> bytes:
    """A valid zip (an archive of scans) with neither [Content_Types].xml nor word/document.xml."""
    return _pack(
        [
            ("说明.txt", "附件为盖章页扫描件。\n".encode()),
            ("scans/page1.txt", b"scanned signature page\n"),
        ]
    )


def docm_bytes() -> bytes:
    """A macro-enabled .docm: the default form with the macro main content type and a VBA part."""
    data = form_docx()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        types = zf.read("[Content_Types].xml").decode()
        rels = zf.read("word/_rels/document.xml.rels").decode()
    assert _DOCX_MAIN in types
    assert "</Types>" in types
    assert "</Relationships>" in rels
    types = types.replace(_DOCX_MAIN, _DOCM_MAIN).replace(
        "</Types>",
        '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>',
    )
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdVba1" Type="http://schemas.microsoft.com/office/2006/'
        'relationships/vbaProject" Target="vbaProject.bin"/></Relationships>',
    )
    project = b'ID="{00000000-0000-0000-0000-000000000000}"\r\nName="Project"\r\n'
    vba = _cfb([("PROJECT", project + b"\0" * (4096 - len(project)))])
    return _repack(
        data,
        replace={
            "[Content_Types].xml": types.encode(),
            "word/_rels/document.xml.rels": rels.encode(),
        },
        add={"word/vbaProject.bin": vba},
    )


# ---------------------------------------------------------------------------
# PDF files


def _pdf_text(text: str) -> bytes:
    # Helvetica without an encoding dictionary draws single bytes, so only Latin-1 fits.
    raw = text.encode("latin-1")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _pdf_pages_node(node: int, kids: list[int], count: int, parent: dict[int, int]) -> bytes:
    """The /Pages object `node`: the root (object 2) or an intermediate node under its parent."""
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    if node == 2:
        # MediaBox and Resources are inheritable, so pages carry only Parent and Contents.
        return (
            b"<< /Type /Pages /Kids [%s] /Count %d /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % (refs, count)
        )
    return b"<< /Type /Pages /Parent %d 0 R /Kids [%s] /Count %d >>" % (
        parent[node],
        refs,
        count,
    )


def pdf_pages_bytes(pages: int, text: str = "proposal", *, stamped: bool = True) -> bytes:
    """A valid PDF 1.4 of `pages` pages that all share one content stream and one font.

    ``stamped``: the pages bear the institution's red seal, as the call asks of the scan.
    """
    if pages < 1:
        raise ValueError("pages must be >= 1")
    fanout = 100
    stream = b"BT\n/F1 24 Tf\n72 720 Td\n(" + _pdf_text(text) + b") Tj\nET\n"
    if stamped:
        stream += seal_ops()
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
    }
    next_id = 5
    parent: dict[int, int] = {}
    nodes: dict[int, tuple[list[int], int]] = {}  # /Pages node id -> (kids, page count)
    level = [(page_id, 1) for page_id in range(next_id, next_id + pages)]
    next_id += pages
    # Group kids into intermediate /Pages nodes, as Acrobat does for big documents,
    # so no /Kids array holds thousands of references.
    while len(level) > fanout:
        grouped: list[tuple[int, int]] = []
        for i in range(0, len(level), fanout):
            group = level[i : i + fanout]
            nodes[next_id] = ([kid for kid, _ in group], sum(n for _, n in group))
            grouped.append((next_id, nodes[next_id][1]))
            next_id += 1
        level = grouped
    nodes[2] = ([kid for kid, _ in level], pages)
    for node, (kids, _) in nodes.items():
        for kid in kids:
            parent[kid] = node
    for node, (kids, count) in nodes.items():
        objects[node] = _pdf_pages_node(node, kids, count, parent)
    for page_id in range(5, 5 + pages):
        objects[page_id] = b"<< /Type /Page /Parent %d 0 R /Contents 4 0 R >>" % parent[page_id]

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for num in range(1, next_id):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + objects[num] + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % next_id
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (next_id, xref_at)
    return bytes(out)


class _FixedIdWriter(PdfWriter):
    # pypdf draws the file /ID from secrets; a fixed one keeps the bytes reproducible.
    def generate_file_identifiers(self) -> None:
        fixed = ByteStringObject(b"ANSO-2021-fixed!")
        self._ID = ArrayObject((fixed, fixed))


def encrypted_pdf() -> bytes:
    """A one-page PDF encrypted (RC4-128) with the user password PDF_PASSWORD."""
    writer = _FixedIdWriter(clone_from=PdfReader(io.BytesIO(pdf_pages_bytes(1))))
    # RC4 needs no crypto library and, unlike AES, no random IVs, so output is deterministic.
    writer.encrypt(PDF_PASSWORD, algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def corrupt_pdf() -> bytes:
    """A PDF cut off mid-object: header and a few objects, then garbage; no xref or trailer."""
    start = (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Cou"
    )
    garbage = _random_bytes("corrupt-pdf", 2048)
    for marker in (b"xref", b"trailer", b"startxref", b"%%EOF", b"obj"):
        assert marker not in garbage
    return start + garbage


def fake_pdf() -> bytes:
    """A real 1x1 grey baseline JPEG, as sent when a scan is renamed to .pdf."""
    app0 = b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    dqt = b"\0" + b"\x01" * 64
    sof0 = b"\x08\0\x01\0\x01\x01\x01\x11\0"  # 8-bit, 1x1, one component, table 0
    # One 1-bit code per table: DC category 0 and AC end-of-block, both coded "0".
    dht_dc = b"\x00" + b"\x01" + b"\0" * 15 + b"\x00"
    dht_ac = b"\x10" + b"\x01" + b"\0" * 15 + b"\x00"
    sos = b"\x01\x01\x00\x00\x3f\x00"
    scan = b"\x3f"  # bits "00" (DC 0, EOB), padded with ones

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    return (
        b"\xff\xd8"
        + segment(0xE0, app0)
        + segment(0xDB, dqt)
        + segment(0xC0, sof0)
        + segment(0xC4, dht_dc)
        + segment(0xC4, dht_ac)
        + segment(0xDA, sos)
        + scan
        + b"\xff\xd9"
    )
