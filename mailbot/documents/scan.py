"""Look for the official seal on the PDF scan: its first and last pages rendered with PDFium.

pypdfium2 renders what pypdf cannot rasterise (the JPEG, JBIG2 and CCITT
images scanners write). At most the first 3 and the last 2 pages are
rendered, at a modest resolution, its red ink counted (mailbot.documents.ink)
and, when there is enough for a seal, handed to the seal finder
(mailbot.documents.seal) until one shows a seal. The work has its own limits
(SealLimits, [intake.seal] in the config): no page is rendered once the time
is spent, a page that would make a bitmap over ``max_page_pixels`` is
rendered smaller, and a page holding an image of more than
``max_image_pixels`` (which PDFium would decode whole) is not rendered at
all. Only the bytes given are read.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is loaded with a page that may show a seal, not with the judge
    from mailbot.documents.seal import SealMark

FIRST_PAGES = 3
LAST_PAGES = 2
POINTS_PER_INCH = 72
CM_PER_INCH = 2.54


@dataclass(frozen=True)
class SealLimits:
    """How the seal is looked for ([intake.seal]); the defaults are config.example.toml's."""

    check: bool = True
    dpi: float = 50.0
    max_page_pixels: int = 2_000_000
    max_image_pixels: int = 60_000_000
    timeout: float = 2.0


@dataclass(frozen=True)
class SealReading:
    """What the rendered pages showed: a seal or none, and whether they show colour at all.

    ``pages`` are the page numbers (from 1) looked at; ``complete`` is False
    when a limit or a page PDFium could not render left a page meant unseen.
    """

    found: bool
    page: int | None
    confidence: float
    colour: bool
    pages: tuple[int, ...]
    complete: bool
    mark: SealMark | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "page": self.page,
            "confidence": self.confidence,
            "colour": self.colour,
            "pages_checked": list(self.pages),
            "complete": self.complete,
        }


def pages_to_render(count: int) -> list[int]:
    """The page indexes looked at: the first 3 and the last 2, each once, in order."""
    wanted = set(range(min(FIRST_PAGES, count))) | set(range(max(0, count - LAST_PAGES), count))
    return sorted(wanted)


def read_seal(
    data: bytes, limits: SealLimits, clock: Callable[[], float] = time.monotonic
) -> SealReading | None:
    """Render the scan's first and last pages and look for a seal; None if PDFium cannot open it."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return None
    try:
        return _look(document, limits, clock)
    finally:
        document.close()


def _look(document: Any, limits: SealLimits, clock: Callable[[], float]) -> SealReading:
    started = clock()
    seen: list[int] = []
    colour = False
    complete = True
    for index in pages_to_render(len(document)):
        if clock() - started > limits.timeout:
            complete = False
            break
        rendered = _render(document, index, limits)
        if rendered is None:
            complete = False
            continue
        image, px_per_cm = rendered
        seen.append(index + 1)
        mark, in_colour = _read_page(image, px_per_cm)
        if mark is not None:
            return SealReading(True, index + 1, mark.confidence, True, tuple(seen), True, mark)
        colour = colour or in_colour
    return SealReading(False, None, 0.0, colour, tuple(seen), complete)


def numpy_loaded() -> bool:
    """Whether numpy is loaded in this process already (a judging process, after a seal)."""
    return "numpy" in sys.modules


def _read_page(image: Any, px_per_cm: float) -> tuple[SealMark | None, bool]:
    """The seal on one page, if any, and whether the page shows colour.

    Where numpy is loaded, the finder reads the page straight away; else the
    red ink is counted without it first (mailbot.documents.ink, the same
    counts), and numpy loads only for a page with red ink enough for a seal.
    """
    if numpy_loaded():
        import numpy as np

        from mailbot.documents import seal

        rgb = np.asarray(image)
        found = seal.find_seal(rgb, px_per_cm)
        return found, found is not None or seal.in_colour(rgb, px_per_cm)
    from mailbot.documents.ink import in_colour, read_ink

    ink = read_ink(image, px_per_cm)
    mark = None if ink.red is None else _find_seal(image, ink.red, px_per_cm)
    return mark, mark is not None or in_colour(ink.colour, image.width, image.height, px_per_cm)


def _find_seal(image: Any, red: Any, px_per_cm: float) -> SealMark | None:
    """The seal finder on a page with red ink enough for a seal (numpy is loaded here)."""
    import numpy as np

    from mailbot.documents.seal import find_seal

    return find_seal(np.asarray(image), px_per_cm, red=np.asarray(red) != 0)


def _render(document: Any, index: int, limits: SealLimits) -> tuple[Any, float] | None:
    """One page as an RGB image (Pillow) and its pixels per cm, or None when it is not rendered."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        page = document[index]
    except pdfium.PdfiumError:
        return None
    try:
        images = page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3)
        for image in images:
            width, height = image.get_px_size()
            if width * height > limits.max_image_pixels:
                return None
        width_pt, height_pt = page.get_size()
        scale = limits.dpi / POINTS_PER_INCH
        area = max(1.0, width_pt * height_pt * scale * scale)
        if area > limits.max_page_pixels:
            scale *= math.sqrt(limits.max_page_pixels / area)
        # Images sampled, not smoothed, on the way down: half the time, and a seal's
        # strokes (several pixels wide in any scan) keep their colour.
        bitmap = page.render(scale=scale, rev_byteorder=True, no_smoothimage=True)
        rgb = bitmap.to_pil().convert("RGB")  # a copy: the bitmap's memory is PDFium's
        bitmap.close()
        return rgb, scale * POINTS_PER_INCH / CM_PER_INCH
    except pdfium.PdfiumError:
        return None
    finally:
        page.close()
