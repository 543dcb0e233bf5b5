"""Sanity checks of the Word/PDF document factory, read back with python-docx and pypdf."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable, Iterator

import docx
import pytest
from docx.document import Document
from docx.table import Table
from lxml import etree
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PdfStreamError

from tests import docfactory as df

MiB = 1 << 20


def _open(data: bytes) -> Document:
    return docx.Document(io.BytesIO(data))


def _tables(tables: list[Table]) -> Iterator[Table]:
    """Every table, descending into tables nested in cells."""
    for table in tables:
        yield table
        seen: set[int] = set()
        for row in table.rows:
            for cell in row.cells:
                # row.cells repeats a merged cell; visit its nested tables once.
                if id(cell._tc) not in seen:
                    seen.add(id(cell._tc))
                    yield from _tables(cell.tables)


def _all_text(doc: Document) -> str:
    parts = [p.text for p in doc.paragraphs]
    for table in _tables(doc.tables):
        parts += [cell.text for row in table.rows for cell in row.cells]
    return "\n".join(parts)


def _distinct(cells: list[docx.table._Cell]) -> list[docx.table._Cell]:
    out: list[docx.table._Cell] = []
    for cell in cells:
        if not any(cell._tc is seen._tc for seen in out):
            out.append(cell)
    return out


def _fields_table(doc: Document, style: str) -> Table:
    return doc.tables[0].cell(0, 0).tables[0] if style == "nested" else doc.tables[0]


def _partners_table(doc: Document, style: str) -> Table:
    if style == "nested":
        nested: Table = doc.tables[0].cell(0, 0).tables[1]
        return nested
    return doc.tables[0] if style == "paragraphs" else doc.tables[1]


# ---------------------------------------------------------------------------
# the proposal form


@pytest.mark.parametrize("style", df.STYLES)
@pytest.mark.parametrize("labels", df.LABEL_SETS)
def test_every_variant_opens_with_labels_values_and_partners(labels: str, style: str) -> None:
    form = df.Form(labels=labels, style=style)
    doc = _open(df.form_docx(form))
    assert doc.paragraphs[0].text == df.HEADING
    text = _all_text(doc)
    for label in df.LABELS[labels].values():
        assert label in text
    for value in form.values().values():
        assert value in text
    for partner in form.partners:
        assert partner.name in text
        assert partner.country in text


@pytest.mark.parametrize("labels", df.LABEL_SETS)
def test_table_style_is_label_cell_then_value_cell(labels: str) -> None:
    form = df.Form(labels=labels)
    table = _open(df.form_docx(form)).tables[0]
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    expected = [[df.LABELS[labels][key], value] for key, value in form.values().items()]
    assert rows == expected


def test_paragraph_style_writes_label_colon_value_and_only_the_partners_table() -> None:
    form = df.Form(labels="zh", style="paragraphs")
    doc = _open(df.form_docx(form))
    assert len(doc.tables) == 1
    lines = [p.text for p in doc.paragraphs[1:7]]
    for line, (key, value) in zip(lines, form.values().items(), strict=True):
        assert line.startswith(df.LABELS["zh"][key])
        assert line.endswith(value)
    # Applicants mix colon widths, so both must occur.
    assert any("：" in line for line in lines)
    assert any(":" in line for line in lines)


def test_messy_labels_in_paragraphs_get_no_second_colon() -> None:
    doc = _open(df.form_docx(df.Form(labels="messy", style="paragraphs")))
    assert doc.paragraphs[2].text == "牵头单位 ：中国科学院植物研究所"
    assert "Principal  Investigator:张喆" in _all_text(doc)


def test_merged_style_repeats_the_spanning_value_cell_in_row_cells() -> None:
    form = df.Form(style="merged")
    table = _open(df.form_docx(form)).tables[0]
    for index, (row, value) in enumerate(zip(table.rows, form.values().values(), strict=True)):
        cells = row.cells
        assert len(cells) == 4
        # python-docx hands out the very same _Cell for every grid column a span covers.
        assert cells[1] is cells[2]
        distinct = _distinct(cells)
        assert distinct[1].text == value
        if index % 2:
            assert len(distinct) == 3
            assert cells[3].text == ""
        else:
            assert len(distinct) == 2
            assert cells[3] is cells[1]


def test_nested_style_fields_table_is_reachable_only_through_cell_tables() -> None:
    form = df.Form(style="nested")
    doc = _open(df.form_docx(form))
    assert len(doc.tables) == 1
    frame = doc.tables[0]
    assert len(frame.rows) == 1
    assert len(frame.columns) == 1
    # _Cell.text covers the cell's own paragraphs only, not tables inside it.
    assert df.LABELS["bilingual"]["title"] not in frame.cell(0, 0).text
    assert form.title not in "\n".join(p.text for p in doc.paragraphs)
    inner = frame.cell(0, 0).tables
    assert len(inner) == 2
    assert [c.text for c in inner[0].rows[0].cells] == [df.LABELS["bilingual"]["title"], form.title]


@pytest.mark.parametrize("style", df.STYLES)
def test_partners_table_header_lead_row_and_blank_numbered_rows(style: str) -> None:
    form = df.Form(style=style, lead_in_partners=True, empty_partner_rows=2)
    table = _partners_table(_open(df.form_docx(form)), style)
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    assert rows[0] == df.partner_header(style)
    assert "单位名称" in rows[0][1]
    assert "Institution" in rows[0][1]
    assert "国家" in rows[0][2]
    assert "Country" in rows[0][2]
    assert rows[1][:3] == ["1", form.institution, "中国"]
    assert [r[1:3] for r in rows[2:5]] == [[p.name, p.country] for p in form.partners]
    assert rows[5:] == [["5", "", "", ""], ["6", "", "", ""]]


def test_header_spelling_varies_with_style() -> None:
    assert df.partner_header("table")[1] == "单位名称/Institution"
    assert df.partner_header("merged")[1] == "单位名称\nInstitution"


def test_partners_default_has_no_lead_row_and_two_blank_rows() -> None:
    rows = _partners_table(_open(df.form_docx()), "table").rows
    assert [c.text for c in rows[1].cells][1] == "University of Nairobi"
    assert [[c.text for c in r.cells] for r in rows[-2:]] == [["4", "", "", ""], ["5", "", "", ""]]


@pytest.mark.parametrize("style", df.STYLES)
def test_omitted_fields_are_left_out_entirely(style: str) -> None:
    form = df.Form(style=style, labels="zh", omit=("budget", "focus_area"))
    doc = _open(df.form_docx(form))
    text = _all_text(doc)
    assert "申请经费" not in text
    assert "资助领域" not in text
    assert form.focus not in text
    assert "项目名称" in text
    assert "执行期限" in text
    if style != "paragraphs":
        assert len(_fields_table(doc, style).rows) == 4


def test_values_are_written_verbatim() -> None:
    form = df.Form(
        budget="1,200,000元", period="2022/1–2024/12", focus="Life and Health", labels="en"
    )
    rows = [[c.text for c in r.cells] for r in _open(df.form_docx(form)).tables[0].rows]
    assert ["Requested Funding (10k CNY)", "1,200,000元"] in rows
    assert ["Project Period", "2022/1–2024/12"] in rows
    assert ["Focus Area", "Life and Health"] in rows


def test_forms_are_byte_reproducible_with_fixed_zip_times() -> None:
    data = df.form_docx()
    assert data == df.form_docx(df.Form())
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize(
    "form",
    [df.Form(labels="fr"), df.Form(style="grid"), df.Form(omit=("budgt",))],
    ids=["labels", "style", "omit"],
)
def test_unknown_options_are_rejected(form: df.Form) -> None:
    with pytest.raises(ValueError):
        df.form_docx(form)


# ---------------------------------------------------------------------------
# hostile Word files


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return df.zip_bomb_docx()


@pytest.mark.slow  # builds a zip bomb
def test_zip_bomb_is_small_on_disk_but_declares_300_mib(bomb: bytes) -> None:
    assert len(bomb) < 1_000_000
    with zipfile.ZipFile(io.BytesIO(bomb)) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        assert set(infos) == {"[Content_Types].xml", "_rels/.rels", "word/document.xml"}
        # Read from the central directory only: inflating it is what the test must not do.
        assert infos["word/document.xml"].file_size >= 300 * MiB
        with zf.open("word/document.xml") as member:
            start = member.read(400)
    assert start.startswith(b"<?xml")
    assert "项目名称".encode() in start


@pytest.mark.slow  # python-docx opens a zip bomb
def test_small_zip_bomb_is_a_docx_python_docx_opens() -> None:
    doc = _open(df.zip_bomb_docx(2))
    assert doc.paragraphs[0].text == "项目名称：" + df.Form().title
    assert len(doc.paragraphs) > 2 * MiB // len(b"<w:p/>") - 10


def _document_xml(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read("word/document.xml")


def test_billion_laughs_declares_nested_entities_and_lxml_refuses_it() -> None:
    data = df.billion_laughs_docx()
    xml = _document_xml(data)
    assert b'<!ENTITY lol9 "&lol8;&lol8;' in xml
    assert b"&lol9;</w:t>" in xml
    # Even with resolve_entities=False, libxml2's amplification guard rejects the DOCTYPE.
    with pytest.raises(etree.XMLSyntaxError, match="amplification"):
        _open(data)


def test_external_entity_is_declared_and_python_docx_does_not_resolve_it() -> None:
    data = df.external_entity_docx()
    assert b'<!ENTITY xxe SYSTEM "file:///etc/passwd">' in _document_xml(data)
    doc = _open(data)
    assert doc.paragraphs[0].text == "项目名称："
    assert "root:" not in _all_text(doc)


def test_internal_entity_carries_the_title_and_python_docx_reads_it_as_empty() -> None:
    data = df.internal_entity_docx()
    xml = _document_xml(data).decode()
    assert f'<!ENTITY title "{df.Form().title}">' in xml
    assert ">&title;</w:t>" in xml
    assert df.Form().title not in xml.split("]>", 1)[1]
    # python-docx parses with resolve_entities=False: the entity node has no .text.
    rows = [[c.text for c in r.cells] for r in _open(data).tables[0].rows]
    assert rows[0] == [df.LABELS["bilingual"]["title"], ""]
    assert rows[1][1] == df.Form().institution


def _cfb_streams(data: bytes) -> dict[str, bytes]:
    """Name -> content of the streams of a small compound file (FAT in header DIFAT only)."""
    assert data.startswith(df.OLE_MAGIC)
    n_fat, first_dir = struct.unpack_from("<II", data, 44)
    fat_sectors = struct.unpack_from(f"<{n_fat}I", data, 76)
    fat = b"".join(data[512 * (s + 1) : 512 * (s + 2)] for s in fat_sectors)
    next_sector = struct.unpack(f"<{len(fat) // 4}I", fat)

    def chain(start: int) -> bytes:
        out = b""
        while start < 0xFFFFFFFA:
            out += data[512 * (start + 1) : 512 * (start + 2)]
            start = next_sector[start]
        return out

    directory = chain(first_dir)
    streams: dict[str, bytes] = {}
    for offset in range(0, len(directory), 128):
        raw = directory[offset : offset + 128]
        name_len, kind = struct.unpack_from("<HB", raw, 64)
        start, size = struct.unpack_from("<IQ", raw, 116)
        if kind:
            name = raw[: name_len - 2].decode("utf-16-le")
            streams[name] = chain(start)[:size] if kind == 2 else b""
    return streams


def test_encrypted_docx_is_an_ole2_file_with_the_encryption_streams() -> None:
    data = df.encrypted_docx()
    streams = _cfb_streams(data)
    assert set(streams) == {"Root Entry", "EncryptionInfo", "EncryptedPackage"}
    assert streams["EncryptionInfo"][:8] == struct.pack("<HHI", 4, 4, 0x40)
    assert b"<encryption " in streams["EncryptionInfo"]
    assert data == df.encrypted_docx()


def test_legacy_doc_is_an_ole2_file_with_a_word_fib() -> None:
    streams = _cfb_streams(df.legacy_doc_bytes())
    assert set(streams) == {"Root Entry", "WordDocument", "1Table"}
    assert struct.unpack_from("<HH", streams["WordDocument"]) == (0xA5EC, 0x00C1)


def test_docm_has_the_macro_content_type_and_a_vba_part() -> None:
    data = df.docm_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        types = zf.read("[Content_Types].xml").decode()
        assert "application/vnd.ms-word.document.macroEnabled.main+xml" in types
        assert "wordprocessingml.document.main+xml" not in types
        assert zf.read("word/vbaProject.bin").startswith(df.OLE_MAGIC)


def test_not_a_zip_and_non_word_zip() -> None:
    junk = df.not_a_zip_docx()
    assert not zipfile.is_zipfile(io.BytesIO(junk))
    assert junk == df.not_a_zip_docx()
    archive = df.non_word_zip()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.testzip() is None
        assert not {"[Content_Types].xml", "word/document.xml"} & set(zf.namelist())


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        # From a stream python-docx skips its is_zipfile check, so no PackageNotFoundError.
        (df.not_a_zip_docx, zipfile.BadZipFile, "not a zip file"),
        (df.encrypted_docx, zipfile.BadZipFile, "not a zip file"),
        (df.legacy_doc_bytes, zipfile.BadZipFile, "not a zip file"),
        (df.non_word_zip, KeyError, "Content_Types"),
        (df.docm_bytes, ValueError, "macroEnabled"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_python_docx_rejects_each_broken_file(
    build: Callable[[], bytes], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        _open(build())


# ---------------------------------------------------------------------------
# PDF files


def test_ten_thousand_pages_stay_small_and_pypdf_walks_the_whole_tree() -> None:
    data = df.pdf_pages_bytes(10_000)
    assert len(data) < 2 * MiB
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) == 10_000
    assert reader.pages[9_999].extract_text() == "proposal"
    assert sum(1 for _ in reader.pages) == 10_000


@pytest.mark.parametrize("pages", [1, 2, 100, 101, 250])
def test_page_counts_and_xref_offsets_are_exact(pages: int) -> None:
    data = df.pdf_pages_bytes(pages, text="Seite (1) \\ x")
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert len(list(reader.pages)) == pages
    assert reader.pages[-1].extract_text() == "Seite (1) \\ x"
    xref_at = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    lines = data[xref_at:].split(b"\n")
    count = int(lines[1].split()[1])
    for num, entry in enumerate(lines[3 : 2 + count], start=1):
        offset = int(entry[:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % num)


def test_page_count_must_be_positive() -> None:
    with pytest.raises(ValueError):
        df.pdf_pages_bytes(0)


def test_encrypted_pdf_needs_the_user_password() -> None:
    data = df.encrypted_pdf()
    assert data == df.encrypted_pdf()
    reader = PdfReader(io.BytesIO(data))
    assert reader.is_encrypted
    # Opening works; the page tree is what needs the key.
    with pytest.raises(FileNotDecryptedError):
        len(reader.pages)
    assert not PdfReader(io.BytesIO(data)).decrypt("wrong")
    assert reader.decrypt(df.PDF_PASSWORD)
    assert reader.pages[0].extract_text() == "proposal"


def test_corrupt_pdf_is_a_truncated_pdf_pypdf_cannot_open() -> None:
    data = df.corrupt_pdf()
    assert data.startswith(b"%PDF-1.4")
    assert not any(m in data for m in (b"xref", b"trailer", b"%%EOF"))
    with pytest.raises(PdfReadError, match="EOF marker not found"):
        PdfReader(io.BytesIO(data), strict=True)
    # Lenient mode tries to rebuild the xref by scanning, and runs off the end.
    with pytest.raises(PdfStreamError, match="Stream has ended unexpectedly"):
        PdfReader(io.BytesIO(data), strict=False)


def test_fake_pdf_is_a_jpeg_pypdf_cannot_open() -> None:
    data = df.fake_pdf()
    assert data.startswith(b"\xff\xd8\xff\xe0")
    assert data.endswith(b"\xff\xd9")
    assert data[6:11] == b"JFIF\0"
    # pypdf 7's strict header check decodes the bytes as UTF-8 to build its message, so a
    # binary header escapes as UnicodeDecodeError, not PdfReadError.
    with pytest.raises(UnicodeDecodeError):
        PdfReader(io.BytesIO(data), strict=True)
    with pytest.raises(PdfStreamError):
        PdfReader(io.BytesIO(data), strict=False)
