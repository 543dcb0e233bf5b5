"""Small valid documents to attach: a signed and stamped PDF with text on each page, a minimal .docx."""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape as xml_escape


def _pdf_string(text: str) -> str:
    # Only ASCII survives Helvetica's standard encoding; anything else becomes "?".
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def seal_ops(cx: float = 430.0, cy: float = 160.0, radius: float = 56.0) -> bytes:
    """PDF drawing operators for an official seal in red: a ring 4 cm across, a star, characters.

    What the call asks on the scan's page (签字盖章), drawn as vectors so that
    every test PDF is as small and quick to render as before.
    """
    k = 0.5523 * radius
    ops = [f"q 0.84 0.11 0.14 RG 0.84 0.11 0.14 rg 3 w {cx + radius:.1f} {cy:.1f} m"]
    for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1)):  # four quarter circles
        x0, y0 = (cx + radius * sx, cy) if sx * sy > 0 else (cx, cy + radius * sy)
        x1, y1 = (cx, cy + radius * sy) if sx * sy > 0 else (cx + radius * sx, cy)
        if sx * sy > 0:
            c1, c2 = (x0, y0 + k * sy), (x1 + k * sx, y1)
        else:
            c1, c2 = (x0 + k * sx, y0), (x1, y1 + k * sy)
        ops.append(f"{c1[0]:.1f} {c1[1]:.1f} {c2[0]:.1f} {c2[1]:.1f} {x1:.1f} {y1:.1f} c")
    ops.append("S")
    star = []
    for i in range(10):
        r = radius * (0.28 if i % 2 == 0 else 0.11)
        angle = math.pi / 2 + i * math.pi / 5
        star.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    ops.append(f"{star[0][0]:.1f} {star[0][1]:.1f} m")
    ops.extend(f"{x:.1f} {y:.1f} l" for x, y in star[1:])
    ops.append("h f 1.5 w")
    for i in range(12):  # the institution's name along the rim, as short strokes
        angle = math.pi * (1.1 - 1.2 * i / 11)
        x, y = cx + 0.7 * radius * math.cos(angle), cy + 0.7 * radius * math.sin(angle)
        ops.append(
            f"{x - 4:.1f} {y:.1f} m {x + 4:.1f} {y:.1f} l {x:.1f} {y - 4:.1f} m {x:.1f} {y + 4:.1f} l"
        )
    ops.append("S Q\n")
    return "\n".join(ops).encode("ascii")


def pdf_bytes(pages: int = 1, text: str = "proposal", *, stamped: bool = True) -> bytes:
    """A small valid PDF 1.4 (exact xref offsets) with text on each page; ends with %%EOF.

    ``stamped``: each page also bears the institution's red seal, as the call asks.
    """
    if pages < 1:
        raise ValueError("pages must be >= 1")
    page_ids = [4 + 2 * i for i in range(pages)]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % p for p in page_ids)
        + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, page_id in enumerate(page_ids):
        label = _pdf_string(text if pages == 1 else f"{text} - page {i + 1}")
        stream = f"BT\n/F1 24 Tf\n72 720 Td\n({label}) Tj\nET\n".encode("ascii")
        if stamped:
            stream += seal_ops()
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for num, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + obj + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


_DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)


def docx_bytes(paragraphs: Sequence[str] = ("项目名称：示例",)) -> bytes:
    """A minimal valid .docx (OPC zip with [Content_Types].xml, _rels/.rels, word/document.xml)."""
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{xml_escape(p)}</w:t></w:r></w:p>' for p in paragraphs
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}<w:sectPr/></w:body></w:document>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        # Word writes 1980-01-01 timestamps; fixed times also make the bytes reproducible.
        for name, text in (
            ("[Content_Types].xml", _DOCX_CONTENT_TYPES),
            ("_rels/.rels", _DOCX_RELS),
            ("word/document.xml", document),
        ):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))
    return buf.getvalue()
