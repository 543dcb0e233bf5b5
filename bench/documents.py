"""The files applicants attach, at their real sizes: a padded Word form, PDF scans, a photo.

The Word proposal is the call's form as tests/docfactory.py builds it (so
mailbot's form reader accepts it), padded with the project description and
a figure a real applicant adds: 50-200 KB. The signed and stamped scan is a
valid multi-page PDF whose pages are grey-scale images compressed with
Flate, as scanners write them: 1-5 MB. Page images come from a small pool
built once, and every PDF gets its own /Info and /ID, so each file (and its
SHA-256) is unique while a 2,000-mail corpus is built in minutes.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime

import docx
from docx.shared import Cm

from tests.docfactory import Form, Partner, form_docx

KB = 1024
MB = 1024 * 1024

# An A4 page scanned at 150 dpi in grey.
PAGE_WIDTH, PAGE_HEIGHT = 1240, 1754

SECTIONS = (
    "一、立项依据与研究意义 Background and Significance",
    "二、研究目标与主要内容 Objectives and Research Content",
    "三、研究方案与技术路线 Methods and Technical Approach",
    "四、国际合作基础与分工 Partnership and Division of Work",
    "五、预期成果与考核指标 Expected Outcomes and Indicators",
    "六、经费预算说明 Budget Justification",
)
TOPICS = (
    "作物耐旱基因资源",
    "高原生态系统碳汇",
    "跨境传染病监测",
    "土壤微生物多样性",
    "气候变化与粮食生产",
    "草地退化与恢复",
    "热带农业病虫害绿色防控",
    "水资源高效利用",
    "生物多样性保护与可持续利用",
    "新能源材料低碳制备",
)
SENTENCES = (
    "本项目围绕{topic}这一关键科学问题，联合“一带一路”沿线国家科研机构开展系统研究。",
    "前期工作中，项目团队已在{topic}方面积累了大量野外观测数据和实验材料，发表论文三十余篇。",
    "合作各方将共享样品、数据与平台，共同培养青年科研人员和研究生，建立长期稳定的合作机制。",
    "研究将综合运用多组学测序、遥感监测、模型模拟与田间试验等手段，揭示{topic}的形成机制。",
    "项目实施后预计形成技术规范两项，申请发明专利三项，在合作国建立示范基地一个。",
    "The project brings together partners in Asia and Africa to study {topic_en} "
    "with shared field stations, common protocols and open data.",
    "Each partner contributes field sites, laboratory capacity and early-career researchers; "
    "joint workshops are held every year in turn at the partner institutions.",
    "经费主要用于野外调查、测试分析、国际合作交流、人员培训及成果发表等。",
)
TOPICS_EN = (
    "drought tolerance genes in crops",
    "carbon sinks of plateau ecosystems",
    "cross-border disease surveillance",
    "soil microbial diversity",
    "climate change and food production",
    "grassland degradation and restoration",
    "green control of tropical crop pests",
    "efficient water use",
    "biodiversity conservation",
    "low-carbon energy materials",
)


def png_noise(width: int, height: int, seed: int) -> bytes:
    """A valid grey-scale PNG of noise: a photo or a figure, incompressible like one."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


def _scan_page(seed: int, ink: float) -> bytes:
    """A scanned page's image data, Flate-compressed: white rows and rows of "ink" (noise)."""
    rng = random.Random(seed)
    white = b"\xff" * PAGE_WIDTH
    rows = [rng.randbytes(PAGE_WIDTH) if rng.random() < ink else white for _ in range(PAGE_HEIGHT)]
    return zlib.compress(b"".join(rows), 1)


@dataclass
class DocumentPool:
    """Built once per corpus: page images and figures that files are assembled from."""

    seed: int = 2021
    pages: list[bytes] = field(default_factory=list)
    small_pages: list[bytes] = field(default_factory=list)
    figures: dict[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        # Scanned proposal pages, about 0.3-0.9 MB each; agreement pages lighter.
        self.pages = [_scan_page(self.seed + i, rng.uniform(0.14, 0.42)) for i in range(12)]
        self.small_pages = [
            _scan_page(self.seed + 100 + i, rng.uniform(0.03, 0.12)) for i in range(6)
        ]

    def figure(self, size: int) -> bytes:
        """A PNG of about ``size`` bytes (rounded to 8 KB steps, cached)."""
        bucket = max(8 * KB, (size // (8 * KB)) * 8 * KB)
        if bucket not in self.figures:
            width = 400
            self.figures[bucket] = png_noise(width, max(8, bucket // width), bucket)
        return self.figures[bucket]


def scan_pdf(
    pool: DocumentPool,
    rng: random.Random,
    target: int,
    title: str,
    when: datetime,
    *,
    small: bool = False,
) -> bytes:
    """A valid PDF of scanned pages, at least two, about ``target`` bytes in all."""
    source = pool.small_pages if small else pool.pages
    pages: list[bytes] = []
    while True:
        page = rng.choice(source)
        if len(pages) >= 2 and sum(map(len, pages)) + len(page) > target:
            break
        pages.append(page)
    return _pdf(pages, title, when, rng)


def _pdf(images: list[bytes], title: str, when: datetime, rng: random.Random) -> bytes:
    count = len(images)
    # 1 catalog, 2 pages, 3 info; then per page: page, content, image.
    page_ids = [4 + 3 * i for i in range(count)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % p for p in page_ids), count),
        3: b"<< /Title <%s> /Producer (Canon iR-ADV C5535 PDF) /CreationDate (D:%s+08'00') >>"
        % (
            ("\ufeff" + title).encode("utf-16-be").hex().encode(),
            when.strftime("%Y%m%d%H%M%S").encode(),
        ),
    }
    draw = b"q 595 0 0 842 0 0 cm /Im0 Do Q\n"
    for page_id, image in zip(page_ids, images, strict=True):
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>"
            % (page_id + 2, page_id + 1)
        )
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(draw), draw)
        objects[page_id + 2] = (
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
            % (PAGE_WIDTH, PAGE_HEIGHT, len(image))
            + image
            + b"\nendstream"
        )
    out = io.BytesIO()
    out.write(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number in range(1, len(objects) + 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n")
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    file_id = rng.randbytes(16).hex().encode()
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info 3 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, file_id, file_id, xref_at)
    )
    return out.getvalue()


def proposal_docx(pool: DocumentPool, rng: random.Random, form: Form, target: int) -> bytes:
    """The call's form filled in, then the project description and a figure: ``target`` bytes."""
    document = docx.Document(io.BytesIO(form_docx(form)))
    pick = rng.randrange(len(TOPICS))
    topic, topic_en = TOPICS[pick], TOPICS_EN[pick]
    for section in SECTIONS:
        document.add_heading(section, level=2)
        for _ in range(rng.randint(2, 4)):
            text = "".join(rng.choice(SENTENCES) for _ in range(rng.randint(3, 6)))
            document.add_paragraph(text.format(topic=topic, topic_en=topic_en))
    text_only = io.BytesIO()
    document.save(text_only)
    room = target - len(text_only.getvalue())
    if room > 4 * KB:
        document.add_paragraph("图1 项目研究区域与合作单位分布 Figure 1: Study sites and partners")
        document.add_picture(io.BytesIO(pool.figure(room)), width=Cm(14))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


FOREIGN_PARTNERS = (
    ("University of Nairobi", "Kenya"),
    ("Kasetsart University", "Thailand"),
    ("Pakistan Academy of Sciences", "Pakistan"),
    ("Mongolian Academy of Sciences", "Mongolia"),
    ("University of Malaya", "Malaysia"),
    ("National Research Centre", "Egypt"),
    ("Vietnam Academy of Science and Technology", "Vietnam"),
    ("Nepal Academy of Science and Technology", "Nepal"),
    ("University of Peradeniya", "Sri Lanka"),
    ("Addis Ababa University", "Ethiopia"),
    ("Universidade de São Paulo", "Brazil"),
    ("Russian Academy of Sciences", "Russia"),
)
DOMESTIC_PARTNERS = (
    ("中国农业大学", "中国"),
    ("兰州大学", "中国"),
    ("云南大学", "中国"),
    ("西北农林科技大学", "中国"),
)


def partners(rng: random.Random, foreign: int, domestic: int) -> list[Partner]:
    chosen = rng.sample(FOREIGN_PARTNERS, foreign) + rng.sample(DOMESTIC_PARTNERS, domestic)
    rng.shuffle(chosen)
    return [Partner(name, country) for name, country in chosen]
