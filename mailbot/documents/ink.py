"""Count a rendered page's colour pixels and red-ink pixels with Pillow, without numpy.

Most pages show no red ink at all: a black-and-white scan, a page of text.
On such a page the seal finder (mailbot.documents.seal, which needs numpy,
some 40 ms to load) would find nothing, so the page is counted here first
and handed to the finder only when it holds enough red ink for a seal. The
counts are exactly the finder's: the same integer tests, done on Pillow's
8-bit bands (differences clipped at 0 only where the test needs no
negative value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

MIN_SIZE_CM = 2.4
# A pixel with this much more red than green and blue is red ink (faint seals reach ~60).
RED_MARGIN = 30
RED_MIN = 90
# A pixel whose channels differ this much is in colour; a page with fewer such
# pixels than COLOUR_PIXELS_PER_CM2 per square cm of page is read as black and white.
CHROMA = 48
COLOUR_PIXELS_PER_CM2 = 0.05


@dataclass(frozen=True)
class Ink:
    """A page's colour pixels, and its red ink (255, else 0) when there is enough for a seal."""

    colour: int
    red: Image | None


def read_ink(rgb: Image, px_per_cm: float) -> Ink:
    """Count the page's colour pixels and, when it may hold a seal, mark its red ink.

    A page whose pixels with red well above green and blue are too few for the
    smallest seal is left there: the red ink is a part of them.
    """
    from PIL import ImageChops

    r, g, b = rgb.split()
    top = ImageChops.lighter(g, b)
    low = ImageChops.darker(g, b)
    chroma = ImageChops.subtract(ImageChops.lighter(r, top), ImageChops.darker(r, low))
    colour = sum(chroma.histogram()[CHROMA:])
    above = ImageChops.subtract(r, top)
    if sum(above.histogram()[RED_MARGIN:]) < seal_ink(px_per_cm):
        return Ink(colour, None)
    red = _red(r, g, b, top, low, above)
    return Ink(colour, red if red.histogram()[255] >= seal_ink(px_per_cm) else None)


def red_ink(rgb: Image) -> Image:
    """The pixels of red ink (255, else 0), by the seal finder's test."""
    from PIL import ImageChops

    r, g, b = rgb.split()
    top, low = ImageChops.lighter(g, b), ImageChops.darker(g, b)
    return _red(r, g, b, top, low, ImageChops.subtract(r, top))


def _red(r: Image, g: Image, b: Image, top: Image, low: Image, above: Image) -> Image:
    """Red ink: r - max(g, b) >= RED_MARGIN, r >= RED_MIN and 2 |g - b| <= r - min(g, b).

    ``above`` is r - max(g, b), clipped at 0. Where the first test holds,
    r - min(g, b) > 0, so its clipped value is exact there.
    """
    from PIL import ImageChops

    strong = above.point(lambda v: 255 if v >= RED_MARGIN else 0)
    bright = r.point(lambda v: 255 if v >= RED_MIN else 0)
    half = ImageChops.subtract(r, low, scale=2.0)  # floor((r - min) / 2), 0 when negative
    narrow = ImageChops.subtract(ImageChops.difference(g, b), half)  # 0 iff |g - b| <= half
    hue = narrow.point(lambda v: 255 if v == 0 else 0)
    return ImageChops.multiply(ImageChops.multiply(strong, bright), hue)


def seal_ink(px_per_cm: float) -> float:
    """The fewest red-ink pixels the smallest seal leaves (fewer: the finder sees none)."""
    return (MIN_SIZE_CM * px_per_cm) ** 2 * 0.05


def in_colour(colour: int, width: int, height: int, px_per_cm: float) -> bool:
    """Whether a page with ``colour`` colour pixels shows colour (grey JPEG noise does not)."""
    area = height * width / (px_per_cm * px_per_cm)
    return bool(colour >= max(20.0, COLOUR_PIXELS_PER_CM2 * area))
