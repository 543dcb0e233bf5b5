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
class InkCount:
    """How many pixels of a page are in colour, and how many are red ink."""

    colour: int
    red: int


def count_ink(rgb: Image) -> InkCount:
    """The page's colour and red-ink pixels (an RGB image), as the seal finder counts them."""
    from PIL import ImageChops

    r, g, b = rgb.split()
    hi = ImageChops.lighter(r, ImageChops.lighter(g, b))
    lo = ImageChops.darker(r, ImageChops.darker(g, b))
    chroma = ImageChops.subtract(hi, lo)
    return InkCount(colour=sum(chroma.histogram()[CHROMA:]), red=red_ink(rgb).histogram()[255])


def red_ink(rgb: Image) -> Image:
    """The pixels of red ink (255, else 0), by the seal finder's test.

    Red ink: r - max(g, b) >= RED_MARGIN, r >= RED_MIN and 2 |g - b| <= r - min(g, b).
    Where the first holds, r - min(g, b) > 0, so its clipped value is exact there.
    """
    from PIL import ImageChops

    r, g, b = rgb.split()
    top = ImageChops.lighter(g, b)
    above = ImageChops.subtract(r, top).point(lambda v: 255 if v >= RED_MARGIN else 0)
    bright = r.point(lambda v: 255 if v >= RED_MIN else 0)
    half = ImageChops.subtract(r, ImageChops.darker(g, b), scale=2.0)  # floor((r - min) / 2)
    narrow = ImageChops.subtract(ImageChops.difference(g, b), half)  # 0 iff |g - b| <= half
    hue = narrow.point(lambda v: 255 if v == 0 else 0)
    return ImageChops.multiply(ImageChops.multiply(above, bright), hue)


def may_hold_seal(count: InkCount, px_per_cm: float) -> bool:
    """Whether the page has red ink enough for the smallest seal (else the finder sees none)."""
    return count.red >= (MIN_SIZE_CM * px_per_cm) ** 2 * 0.05


def in_colour(count: InkCount, width: int, height: int, px_per_cm: float) -> bool:
    """Whether the page shows colour at all (a grey scan with JPEG noise does not)."""
    area = height * width / (px_per_cm * px_per_cm)
    return bool(count.colour >= max(20.0, COLOUR_PIXELS_PER_CM2 * area))
