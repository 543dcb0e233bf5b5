"""The Word form read from its XML gives what python-docx 1.2's object model gives.

mailbot reads word/document.xml with lxml (mailbot.documents.word, .opc);
until then it read the form with python-docx. The python-docx reader is
kept as the reference (tests/docx_reference.py), and both read every Word file the tests and the
benchmark build, and hand-made XML for each construct a form may hold: the
same tables, rows, cells and paragraphs, or the same words of refusal.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bench.documents import DocumentPool, partners, proposal_docx
from mailbot.calls import load_call
from mailbot.documents.template import blank_form
from mailbot.documents.word import DocxContent, UnreadableDocument, read_docx
from tests import docfactory as df
from tests.conftest import RULES
from tests.docx_reference import read_with_python_docx
from tests.mailfactory.documents import docx_bytes

LIMITS = load_call(RULES).documents
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def outcome(
    reader: Callable[[bytes], DocxContent], data: bytes
) -> DocxContent | tuple[str, str, str]:
    """What a reader makes of a file: its content, or the words it refuses it with."""
    try:
        return reader(data)
    except UnreadableDocument as exc:
        return ("unreadable", exc.zh, exc.en)


def assert_same(data: bytes) -> DocxContent | tuple[str, str, str]:
    ours = outcome(lambda d: read_docx(d, LIMITS), data)
    assert ours == outcome(lambda d: read_with_python_docx(d, LIMITS), data)
    return ours


# ---------------------------------------------------------------------------
# every Word file the tests and the benchmark build


FACTORY_FORMS = (
    [df.Form(labels=labels, style=style) for labels in df.LABEL_SETS for style in df.STYLES]
    + [
        df.Form(style=style, lead_in_partners=True, empty_partner_rows=4, omit=("budget",))
        for style in df.STYLES
    ]
    + [
        df.Form(
            focus="□粮食安全 □生命健康 □低碳环保", period="2022.01-2024.12", budget="1,200,000元"
        )
    ]
)


@pytest.mark.parametrize(
    "form", FACTORY_FORMS, ids=[f"{f.style}-{f.labels}-{i}" for i, f in enumerate(FACTORY_FORMS)]
)
def test_every_form_the_factory_builds_reads_the_same(form: df.Form) -> None:
    content = assert_same(df.form_docx(form))
    assert isinstance(content, DocxContent)
    assert content.tables


HOSTILE = {
    "not a zip": df.not_a_zip_docx,
    "encrypted": df.encrypted_docx,
    "legacy doc": df.legacy_doc_bytes,
    "zip without Word": df.non_word_zip,
    "macro-enabled": df.docm_bytes,
    "decompression bomb": lambda: df.zip_bomb_docx(31),  # over the 30 MB a part
    "small bomb (refused by its ratio)": lambda: df.zip_bomb_docx(1),
    "billion laughs": df.billion_laughs_docx,
    "external entity": df.external_entity_docx,
    "internal entity": df.internal_entity_docx,
    "mail factory's minimal docx": docx_bytes,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_hostile_file_is_refused_or_read_the_same(name: str) -> None:
    assert_same(HOSTILE[name]())


def test_the_macro_enabled_form_is_refused_in_the_same_words() -> None:
    refused = assert_same(df.docm_bytes())
    assert isinstance(refused, tuple), refused
    assert refused[2] == (
        "The file is a macro-enabled Word document (.docm); please save it as .docx."
    )


def test_the_blank_template_reads_the_same() -> None:
    assert_same(blank_form(load_call(RULES)))


class _FiguresOnly(DocumentPool):
    """The benchmark's pool without its scanned pages: a Word form needs only figures."""

    def __post_init__(self) -> None:
        pass


@pytest.mark.parametrize("seed", range(5))
def test_the_benchmark_corpus_forms_read_the_same(seed: int) -> None:
    rng = random.Random(f"form15|{seed}")
    form = df.Form(
        budget=rng.choice(["120", "150万元", "1,200,000元"]),
        focus=rng.choice(["☑粮食安全 □生命健康 □低碳环保", "生命健康"]),
        partners=partners(rng, rng.randint(1, 4), rng.randint(0, 2)),
        labels=rng.choice(df.LABEL_SETS),
        style=rng.choice(df.STYLES),
    )
    data = proposal_docx(_FiguresOnly(seed), rng, form, rng.randint(50 * 1024, 200 * 1024))
    content = assert_same(data)
    assert isinstance(content, DocxContent)
    assert len(content.paragraphs) > 10


# ---------------------------------------------------------------------------
# hand-made XML: one construct at a time


def package(body: str, *, document_type: str | None = None, extra: str = "") -> bytes:
    """A .docx whose word/document.xml holds ``body`` (and a section properties element)."""
    main = (
        document_type
        or "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    )
    types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main}"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        f'relationships/officeDocument" Target="word/document.xml"/>{extra}</Relationships>'
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W_NS}" xmlns:r="http://schemas.openxmlformats.org/'
        f'officeDocument/2006/relationships"><w:body>{body}<w:sectPr/></w:body></w:document>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (
            ("[Content_Types].xml", types),
            ("_rels/.rels", rels),
            ("word/document.xml", document),
        ):
            zf.writestr(name, text.encode())
    return buf.getvalue()


def p(*runs: str) -> str:
    return f"<w:p>{''.join(runs)}</w:p>"


def r(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def tc(*content: str, span: int = 1, vmerge: str | None = None) -> str:
    props = f'<w:gridSpan w:val="{span}"/>' if span != 1 else ""
    if vmerge is not None:
        props += f'<w:vMerge w:val="{vmerge}"/>' if vmerge else "<w:vMerge/>"
    return f"<w:tc><w:tcPr>{props}</w:tcPr>{''.join(content) or p()}</w:tc>"


def tr(*cells: str, before: int = 0, after: int = 0) -> str:
    props = (f'<w:gridBefore w:val="{before}"/>' if before else "") + (
        f'<w:gridAfter w:val="{after}"/>' if after else ""
    )
    return f"<w:tr><w:trPr>{props}</w:trPr>{''.join(cells)}</w:tr>"


def tbl(*rows: str) -> str:
    return f"<w:tbl><w:tblPr/><w:tblGrid/>{''.join(rows)}</w:tbl>"


def _nested(depth: int) -> str:
    """A one-cell table holding a one-cell table... ``depth`` tables in all."""
    inner = ""
    for level in range(depth, 0, -1):
        inner = tbl(tr(tc(p(r(str(level))), inner)))
    return inner


CASES: dict[str, str] = {
    "tabs and breaks": p(
        r("项目名称"),
        "<w:r><w:tab/><w:t>a</w:t><w:br/><w:t>b</w:t><w:cr/><w:t>c</w:t>"
        '<w:br w:type="page"/><w:br w:type="textWrapping"/><w:ptab/><w:noBreakHyphen/></w:r>',
    ),
    "hyperlink": p(
        r("Partner: "),
        '<w:hyperlink r:id="rId9">' + r("University") + r(" of Nairobi") + "</w:hyperlink>",
    ),
    "tracked insertion and deletion": p(
        r("执行期限："),
        '<w:ins w:id="1" w:author="a">' + r("2022.01-2024.12") + "</w:ins>",
        '<w:del w:id="2" w:author="a"><w:r><w:delText>2021</w:delText></w:r></w:del>',
    ),
    "simple field and smart tag": p(
        r("经费："),
        '<w:fldSimple w:instr="PAGE">' + r("1") + "</w:fldSimple>",
        '<w:smartTag w:uri="u" w:element="e">' + r("120") + "</w:smartTag>",
    ),
    "content controls": p(
        r("项目负责人："), "<w:sdt><w:sdtContent>" + r("张喆") + "</w:sdtContent></w:sdt>"
    )
    + "<w:sdt><w:sdtContent>"
    + p(r("项目名称：block sdt"))
    + "</w:sdtContent></w:sdt>"
    + tbl(
        tr(
            tc(p(r("单元"))),
            "<w:sdt><w:sdtContent>" + tc(p(r("hidden"))) + "</w:sdtContent></w:sdt>",
        )
    ),
    "blank paragraphs and spaces": p(r("   "))
    + p()
    + p(r(" 项目名称 ： x "))
    + p("<w:r><w:t> </w:t></w:r>"),
    "horizontally merged cells": tbl(
        tr(tc(p(r("项目名称"))), tc(p(r("值")), span=3)),
        tr(tc(p(r("a"))), tc(p(r("b")), span=2), tc(p(r("c")))),
    ),
    "vertically merged cells": tbl(
        tr(tc(p(r("领域")), vmerge="restart"), tc(p(r("粮食安全")))),
        tr(tc(vmerge=""), tc(p(r("生命健康")))),
        tr(tc(vmerge="continue"), tc(p(r("低碳环保")))),
        tr(tc(p(r("经费"))), tc(p(r("120")))),
    ),
    "vertical merge under a horizontal span": tbl(
        tr(tc(p(r("wide")), span=2, vmerge="restart"), tc(p(r("x")))),
        tr(tc(span=2, vmerge="continue"), tc(p(r("y")))),
    ),
    "two neighbours continuing one cell": tbl(
        tr(tc(p(r("75")))),
        tr(tc(p(r("28")), span=0, vmerge=""), tc(p(r("54")), span=2, vmerge="")),
    ),
    "merged cell holding a table": tbl(
        tr(tc(p(r("outer")), tbl(tr(tc(p(r("inner"))))), vmerge="restart")),
        tr(tc(vmerge="continue")),
    ),
    "grid before and after": tbl(
        tr(tc(p(r("a"))), tc(p(r("b"))), tc(p(r("c")))),
        tr(tc(p(r("late"))), before=1, after=1),
        tr(tc(vmerge="continue"), before=1, after=1),
    ),
    "nested tables five deep": _nested(5),
    "cell paragraphs joined by newlines": tbl(
        tr(tc(p(r("项目名称")), p(), p(r(" 第二段 "))), tc(p(r("x"))))
    ),
    "a span of zero": tbl(tr(tc(p(r("gone")), span=0), tc(p(r("kept"))))),
    "empty w:t and a comment inside one": p("<w:r><w:t/><w:t>a<!-- c -->b</w:t></w:r>"),
}
BROKEN: dict[str, str] = {
    "merge in the top row": tbl(tr(tc(vmerge="continue"))),
    "merge with nothing above": tbl(tr(tc(p(r("a")))), tr(tc(p(r("x")), span=1), tc(vmerge=""))),
    "span that is no number": tbl(
        tr('<w:tc><w:tcPr><w:gridSpan w:val="two"/></w:tcPr><w:p/></w:tc>')
    ),
    "span without a value": tbl(tr("<w:tc><w:tcPr><w:gridSpan/></w:tcPr><w:p/></w:tc>")),
    "grid before that is no number": tbl(
        tr(tc(p(r("a")))),
        '<w:tr><w:trPr><w:gridBefore w:val="x"/></w:trPr>' + tc(vmerge="") + "</w:tr>",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_construct_reads_as_python_docx_reads_it(name: str) -> None:
    content = assert_same(package(CASES[name]))
    assert isinstance(content, DocxContent)


@pytest.mark.parametrize("name", list(BROKEN))
def test_each_broken_table_is_refused_in_python_docx_words(name: str) -> None:
    refused = assert_same(package(BROKEN[name]))
    assert isinstance(refused, tuple)
    assert refused[0] == "unreadable"


def test_what_the_constructs_read_as() -> None:
    """The readings themselves, so a change in python-docx shows here and not only as a mismatch."""
    text = read_docx(package(CASES["tabs and breaks"]), LIMITS).paragraphs
    assert text == ["项目名称\ta\nb\nc\n\t-"]
    tracked = read_docx(package(CASES["tracked insertion and deletion"]), LIMITS).paragraphs
    assert tracked == ["执行期限："]  # python-docx reads no run inside w:ins
    twice = read_docx(package(CASES["two neighbours continuing one cell"]), LIMITS).tables
    assert twice == [[["75"], ["75", "75"]]]  # each w:tc once, though both continue "75"
    merged = read_docx(package(CASES["vertically merged cells"]), LIMITS).tables
    assert merged == [
        [["领域", "粮食安全"], ["领域", "生命健康"], ["领域", "低碳环保"], ["经费", "120"]]
    ]
    inner = read_docx(package(CASES["merged cell holding a table"]), LIMITS).tables
    # A cell's text is its own paragraphs; the continued cell brings its table a second time.
    assert inner == [[["outer"], ["outer"]], [["inner"]], [["inner"]]]
    deep = read_docx(package(CASES["nested tables five deep"]), LIMITS).tables
    assert [rows[0][0] for rows in deep] == ["1", "2", "3", "4"]  # three levels down, no more


PACKAGES: dict[str, bytes] = {
    "a template's main part": package(
        p(r("x")),
        document_type="application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
    ),
    "a relationship to a missing part": package(
        p(r("x")),
        extra='<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/styles" Target="word/styles.xml"/>',
    ),
    "two main documents": package(
        p(r("x")),
        extra='<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/officeDocument" Target="word/document.xml"/>',
    ),
    "an external link": package(
        p(r("x")),
        extra='<Relationship Id="rId3" Type="http://example.org/x" Target="http://127.0.0.1/"'
        ' TargetMode="External"/>',
    ),
}


def _rezip(data: bytes, name: str, content: bytes | None) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, blob in entries:
            if member != name:
                zf.writestr(member, blob)
        if content is not None:
            zf.writestr(name, content)
    return buf.getvalue()


FORM = df.form_docx()
PACKAGES |= {
    "broken styles part": _rezip(FORM, "word/styles.xml", b"<w:styles"),
    "broken document part": _rezip(FORM, "word/document.xml", b"<w:document><w:body>"),
    "no package relationships": _rezip(FORM, "_rels/.rels", None),
    "a part without a content type": _rezip(
        FORM,
        "[Content_Types].xml",
        zipfile.ZipFile(io.BytesIO(FORM))
        .read("[Content_Types].xml")
        .replace(b'Extension="xml"', b'Extension="xmlx"'),
    ),
    "a root that is not a document": _rezip(
        package(""), "word/document.xml", f'<w:body xmlns:w="{W_NS}"/>'.encode()
    ),
    "a document without a body": _rezip(
        package(""), "word/document.xml", f'<w:document xmlns:w="{W_NS}"/>'.encode()
    ),
}


PLAIN = package(p(r("x")))
RELS = zipfile.ZipFile(io.BytesIO(PLAIN)).read("_rels/.rels")
TYPES = zipfile.ZipFile(io.BytesIO(PLAIN)).read("[Content_Types].xml")
MAIN_TARGET = b'Target="word/document.xml"'
PACKAGES |= {
    "an absolute target": _rezip(
        PLAIN, "_rels/.rels", RELS.replace(MAIN_TARGET, b'Target="/word/document.xml"')
    ),
    "a target with dots": _rezip(
        PLAIN, "_rels/.rels", RELS.replace(MAIN_TARGET, b'Target="./x/../word/document.xml"')
    ),
    "a part name in capitals": _rezip(
        PLAIN, "[Content_Types].xml", TYPES.replace(b"/word/document.xml", b"/WORD/Document.XML")
    ),
    "the main part's type missing": _rezip(
        PLAIN, "[Content_Types].xml", TYPES.replace(b"/word/document.xml", b"/word/other.xml")
    ),
    "the main relationship's Id reused": _rezip(
        PLAIN,
        "_rels/.rels",
        RELS.replace(
            b"</Relationships>",
            b'<Relationship Id="rId1" Type="http://x/y" Target="word/document.xml"/>'
            b"</Relationships>",
        ),
    ),
    "a part relating to itself and to a missing part": _rezip(
        PLAIN,
        "word/_rels/document.xml.rels",
        b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="a" Type="t" Target="document.xml"/>'
        b'<Relationship Id="b" Type="t" Target="../word/missing.xml"/></Relationships>',
    ),
    "broken package relationships": _rezip(PLAIN, "_rels/.rels", b"<Relationships"),
    "a relationship without a target": _rezip(
        PLAIN, "_rels/.rels", RELS.replace(b" " + MAIN_TARGET, b"")
    ),
}


@pytest.mark.parametrize("name", list(PACKAGES))
def test_each_package_is_opened_or_refused_as_python_docx_does(name: str) -> None:
    assert_same(PACKAGES[name])


def test_a_side_part_parsed_once_is_not_parsed_again_and_a_broken_one_is_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lxml import etree

    styles = zipfile.ZipFile(io.BytesIO(FORM)).read("word/styles.xml")
    # A styles part no other test reads: this test's own comment makes its digest new.
    own = styles.replace(b"?>", b"?><!-- side part -->", 1)
    fresh = _rezip(FORM, "word/styles.xml", own)
    parsed: list[bytes] = []
    real = etree.fromstring

    def counting(blob: bytes, parser: etree.XMLParser) -> etree._Element:
        parsed.append(blob)
        return real(blob, parser)

    monkeypatch.setattr(etree, "fromstring", counting)
    first = read_docx(fresh, LIMITS)
    assert own in parsed
    parsed.clear()
    assert read_docx(fresh, LIMITS) == first
    assert own not in parsed  # known well-formed now
    assert len(parsed) >= 3  # the content types, the relationships and the document still are
    broken = _rezip(FORM, "word/styles.xml", styles[:-20])
    with pytest.raises(UnreadableDocument, match=r"\(XMLSyntaxError\)"):
        read_docx(broken, LIMITS)


# ---------------------------------------------------------------------------
# random documents: every construct above, mixed and nested at random

RUN_CHILDREN = st.sampled_from(
    [
        "<w:t>项目</w:t>",
        '<w:t xml:space="preserve"> a b </w:t>',
        "<w:t/>",
        "<w:tab/>",
        "<w:ptab/>",
        "<w:br/>",
        '<w:br w:type="page"/>',
        '<w:br w:type="column"/>',
        "<w:cr/>",
        "<w:noBreakHyphen/>",
        "<w:delText>gone</w:delText>",
        "<w:rPr><w:b/></w:rPr>",
    ]
)
WRAPPERS = st.sampled_from(
    [
        "{}",
        '<w:hyperlink r:id="rId9">{}</w:hyperlink>',
        '<w:ins w:id="1" w:author="a">{}</w:ins>',
        '<w:del w:id="2" w:author="a">{}</w:del>',
        "<w:sdt><w:sdtContent>{}</w:sdtContent></w:sdt>",
        '<w:smartTag w:uri="u" w:element="e">{}</w:smartTag>',
        '<w:fldSimple w:instr="PAGE">{}</w:fldSimple>',
    ]
)


@st.composite
def paragraphs(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 3))):
        runs = "".join(
            "<w:r>" + "".join(draw(st.lists(RUN_CHILDREN, max_size=4))) + "</w:r>"
            for _ in range(draw(st.integers(1, 2)))
        )
        pieces.append(draw(WRAPPERS).format(runs))
    return p(*pieces)


@st.composite
def tables(draw: st.DrawFn, depth: int = 0) -> str:
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        cells = []
        for _ in range(draw(st.integers(0, 3))):
            content = draw(st.lists(paragraphs(), max_size=2))
            if depth < 4 and draw(st.integers(0, 5)) == 0:
                content.append(draw(tables(depth + 1)))
            span = draw(st.sampled_from([1, 1, 1, 2, 3, 0]))
            vmerge = draw(st.sampled_from([None, None, "restart", "continue", ""]))
            cells.append(tc(*content, span=span, vmerge=vmerge))
        before = draw(st.sampled_from([0, 0, 0, 1, 2]))
        rows.append(tr(*cells, before=before, after=draw(st.sampled_from([0, 1]))))
    return tbl(*rows)


# A failing example is reported as found: shrinking documents this size takes minutes.
@pytest.mark.slow  # 300 documents read twice: about 30 s
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(blocks=st.lists(st.one_of(paragraphs(), tables()), max_size=5))
def test_random_documents_read_as_python_docx_reads_them(blocks: list[str]) -> None:
    assert_same(package("".join(blocks)))
