"""Scanned proposal pages as applicants send them, drawn with Pillow and saved as PDF.

Each page is an A4 sheet at a scanner's resolution: black "text" (glyph-like
strokes in lines), and per class what the seal finder must tell apart: an
official seal (round, oval or square, 3–5 cm, any rotation, any shade of red
from faint pink to saturated vermilion, partly over the text), or red title
text, red underlines, a red letterhead logo, blue or black signatures; and
black-and-white (grey) scans with and without a grey seal. Pages are
JPEG-compressed as a scanner's PDF holds them. Everything comes from a seed:
the same seed, the same bytes.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw

Colour = tuple[int, int, int]
PAPER: Colour = (246, 244, 238)
INK: Colour = (28, 28, 32)

# Which classes carry a seal, and which are colour scans.
SEAL_CLASSES = ("seal_round", "seal_oval", "seal_square", "seal_faint", "seal_over_text")
NO_SEAL_CLASSES = ("red_heading", "red_underline", "red_logo", "signatures", "red_everything")
GREY_CLASSES = ("grey_with_seal", "grey_plain")
CLASSES = SEAL_CLASSES + NO_SEAL_CLASSES + GREY_CLASSES

REDS: tuple[Colour, ...] = (
    (214, 28, 36),  # saturated seal red
    (178, 22, 34),  # dark red
    (226, 76, 52),  # vermilion
    (204, 40, 92),  # crimson towards magenta
    (232, 52, 60),
)


@dataclass(frozen=True)
class Page:
    """One drawn page: what it shows, and its image."""

    kind: str
    image: Image.Image

    @property
    def sealed(self) -> bool:
        return self.kind in SEAL_CLASSES or self.kind == "grey_with_seal"

    @property
    def colour(self) -> bool:
        return self.kind not in GREY_CLASSES


def cm(dpi: int, value: float) -> int:
    return round(value * dpi / 2.54)


def blank(dpi: int) -> Image.Image:
    return Image.new("RGB", (cm(dpi, 21.0), cm(dpi, 29.7)), PAPER)


def text_lines(
    draw: ImageDraw.ImageDraw, rng: random.Random, dpi: int, top: float, bottom: float
) -> None:
    """Lines of body text (5 mm apart) as glyph-like strokes, between two heights in cm."""
    y = top
    size = cm(dpi, 0.32)
    while y < bottom:
        x = 2.5
        right = rng.uniform(15.0, 18.5)
        while x < right:
            glyph(draw, rng, cm(dpi, x), cm(dpi, y), size, INK, width=max(1, dpi // 100))
            x += 0.42 + (0.3 if rng.random() < 0.12 else 0.0)
        y += 0.55


def glyph(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    x: int,
    y: int,
    size: int,
    colour: Colour | int,
    width: int,
) -> None:
    """One character-like cluster of 3–5 strokes in a size x size box."""
    for _ in range(rng.randint(3, 5)):
        if rng.random() < 0.5:  # a horizontal or vertical bar
            if rng.random() < 0.5:
                yy = y + rng.randint(0, size)
                draw.line([(x, yy), (x + rng.randint(size // 2, size), yy)], colour, width)
            else:
                xx = x + rng.randint(0, size)
                draw.line([(xx, y), (xx, y + rng.randint(size // 2, size))], colour, width)
        else:
            a = (x + rng.randint(0, size), y + rng.randint(0, size))
            b = (x + rng.randint(0, size), y + rng.randint(0, size))
            draw.line([a, b], colour, width)


def star(cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.38
        angle = turn + i * math.pi / 5 - math.pi / 2
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def seal_image(
    rng: random.Random, dpi: int, shape: str, size_cm: float, colour: Colour
) -> Image.Image:
    """An official seal on a transparent square: outline, a star, characters along the rim."""
    side = cm(dpi, size_cm * 1.5)
    layer = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(layer)
    c = side / 2
    w = cm(dpi, size_cm) / 2
    h = w * (0.66 if shape == "oval" else 1.0)
    ring = max(2, round(cm(dpi, rng.uniform(0.08, 0.14))))
    box = [c - w, c - h, c + w, c + h]
    if shape == "square":
        draw.rectangle(box, outline=255, width=ring)
    else:
        draw.ellipse(box, outline=255, width=ring)
    if shape != "square" and rng.random() < 0.5:  # an inner thin ring on some seals
        inner = [c - w * 0.86, c - h * 0.86, c + w * 0.86, c + h * 0.86]
        draw.ellipse(inner, outline=255, width=max(1, ring // 3))
    draw.polygon(star(c, c, min(w, h) * 0.28, 0), fill=255)
    size = max(3, round(min(w, h) * 0.22))
    count = 14 if shape != "square" else 0
    for i in range(count):  # characters along the upper rim
        angle = math.pi * (0.9 + 1.2 * i / max(1, count - 1))
        gx = c + w * 0.68 * math.cos(angle) - size / 2
        gy = c + h * 0.68 * math.sin(angle) - size / 2
        glyph(draw, rng, round(gx), round(gy), size, 255, max(1, ring // 2))
    if shape == "square":  # characters in a grid, as square seals carry them
        for row in range(2):
            for col in range(2):
                gx = c - w * 0.7 + col * w * 0.85
                gy = c - h * 0.7 + row * h * 0.85
                glyph(draw, rng, round(gx), round(gy), round(w * 0.55), 255, ring)
    for i in range(5):  # a line of characters under the star
        gx = c - w * 0.5 + i * w * 0.2
        glyph(draw, rng, round(gx), round(c + h * 0.38), size, 255, 1)
    layer = layer.rotate(rng.uniform(0, 360), resample=Image.Resampling.BILINEAR)
    ink = Image.new("RGB", layer.size, colour)
    tint = Image.new("RGBA", layer.size)
    tint.paste(ink, mask=layer)
    return tint


def stamp(page: Image.Image, seal: Image.Image, x: int, y: int, strength: float) -> None:
    """Print the seal on the page as ink does: multiplied, so black text stays black."""
    region = (x, y, x + seal.width, y + seal.height)
    under = page.crop(region)
    white = Image.new("RGB", seal.size, (255, 255, 255))
    alpha = seal.getchannel("A").point(lambda v: round(v * strength))
    colour = Image.composite(seal.convert("RGB"), white, alpha)
    page.paste(ImageChops.multiply(under, colour), region[:2])


def signature(
    draw: ImageDraw.ImageDraw, rng: random.Random, dpi: int, x: float, y: float, colour: Colour
) -> None:
    """A handwritten signature: a scribble of joined curves about 4 cm long."""
    points = []
    for i in range(40):
        t = i / 39
        points.append(
            (
                cm(dpi, x + 4.0 * t + 0.2 * math.sin(t * 19)),
                cm(dpi, y + 0.5 * math.sin(t * 11 + rng.random()) + rng.uniform(-0.1, 0.1)),
            )
        )
    draw.line(points, colour, max(2, cm(dpi, 0.06)), joint="curve")


def red_logo(page: Image.Image, rng: random.Random, dpi: int, colour: Colour) -> None:
    """A letterhead emblem in red, 1.3–2.4 cm: a filled disc or shield with white cut-outs."""
    size = cm(dpi, rng.uniform(1.3, 2.4))
    x, y = cm(dpi, rng.uniform(2.0, 3.0)), cm(dpi, rng.uniform(1.0, 1.8))
    draw = ImageDraw.Draw(page)
    if rng.random() < 0.5:
        draw.ellipse([x, y, x + size, y + size], fill=colour)
        draw.ellipse(
            [x + size // 4, y + size // 4, x + 3 * size // 4, y + 3 * size // 4], fill=PAPER
        )
        draw.polygon(star(x + size / 2, y + size / 2, size * 0.22, 0), fill=colour)
    else:
        draw.polygon(
            [
                (x, y),
                (x + size, y),
                (x + size, y + size * 0.6),
                (x + size / 2, y + size),
                (x, y + size * 0.6),
            ],
            fill=colour,
        )
        draw.rectangle([x + size // 3, y + size // 5, x + 2 * size // 3, y + size // 2], fill=PAPER)
    for i in range(rng.randint(8, 14)):  # the institution's name beside it, in red
        glyph(
            draw,
            rng,
            x + size + cm(dpi, 0.4 + 0.55 * i),
            y + size // 3,
            cm(dpi, 0.45),
            colour,
            max(1, dpi // 60),
        )


def heading(draw: ImageDraw.ImageDraw, rng: random.Random, dpi: int, colour: Colour) -> None:
    """A red title of one or two lines of large characters."""
    for line in range(rng.randint(1, 2)):
        n = rng.randint(5, 14)
        size = cm(dpi, rng.uniform(0.6, 1.0))
        left = 10.5 - n * 0.55 * size * 2.54 / dpi
        for i in range(n):
            x = cm(dpi, left) + i * round(size * 1.15)
            glyph(draw, rng, x, cm(dpi, 2.0 + line * 1.4), size, colour, max(2, dpi // 45))


def draw_page(kind: str, rng: random.Random, dpi: int) -> Image.Image:
    page = blank(dpi)
    draw = ImageDraw.Draw(page)
    text_lines(draw, rng, dpi, 4.5, rng.uniform(18.0, 26.0))
    body_ink = (40, 50, 140) if rng.random() < 0.6 else INK
    if kind in SEAL_CLASSES or kind == "grey_with_seal":
        signature(draw, rng, dpi, rng.uniform(3.0, 12.0), rng.uniform(22.0, 26.0), body_ink)
        _seal_on(page, kind, rng, dpi)
    elif kind == "red_heading":
        heading(draw, rng, dpi, rng.choice(REDS))
    elif kind == "red_underline":
        for _ in range(rng.randint(2, 6)):
            y = cm(dpi, rng.uniform(5.0, 20.0))
            x = cm(dpi, rng.uniform(2.5, 8.0))
            draw.line(
                [(x, y), (x + cm(dpi, rng.uniform(3.0, 10.0)), y)],
                rng.choice(REDS),
                max(1, dpi // 50),
            )
    elif kind == "red_logo":
        red_logo(page, rng, dpi, rng.choice(REDS))
    elif kind == "signatures":
        for _ in range(rng.randint(1, 3)):
            colour = rng.choice(((30, 50, 170), (20, 20, 60), INK, (40, 90, 200)))
            signature(draw, rng, dpi, rng.uniform(3.0, 14.0), rng.uniform(20.0, 27.0), colour)
    elif kind == "red_everything":
        heading(draw, rng, dpi, rng.choice(REDS))
        red_logo(page, rng, dpi, rng.choice(REDS))
        y = cm(dpi, rng.uniform(8.0, 20.0))
        draw.line([(cm(dpi, 3), y), (cm(dpi, 15), y)], rng.choice(REDS), max(1, dpi // 50))
        signature(draw, rng, dpi, rng.uniform(3.0, 12.0), 24.0, (30, 50, 170))
    if kind in GREY_CLASSES:
        page = page.convert("L").convert("RGB")
    return page


def _seal_on(page: Image.Image, kind: str, rng: random.Random, dpi: int) -> None:
    shape = {"seal_oval": "oval", "seal_square": "square"}.get(
        kind, rng.choice(("round", "round", "round", "oval", "square"))
    )
    size = rng.uniform(3.4, 4.4) if shape == "square" else rng.uniform(3.0, 5.0)
    if shape == "oval":
        size = rng.uniform(4.0, 5.0)
    colour = rng.choice(REDS)
    strength = rng.uniform(0.35, 0.55) if kind == "seal_faint" else rng.uniform(0.75, 1.0)
    seal = seal_image(rng, dpi, shape, size, colour)
    if kind == "seal_over_text":  # on the body text, where seals often land
        x, y = cm(dpi, rng.uniform(2.0, 12.0)), cm(dpi, rng.uniform(5.0, 14.0))
    else:  # beside the signature and date
        x, y = cm(dpi, rng.uniform(8.0, 13.0)), cm(dpi, rng.uniform(19.0, 22.0))
    stamp(page, seal, x, y, strength)


def pdf_of(pages: list[Image.Image], dpi: int, quality: int) -> bytes:
    """The pages as one PDF, each a JPEG at the scan's resolution (as scanners write them)."""
    out = io.BytesIO()
    first, *rest = pages
    first.save(out, "PDF", resolution=dpi, save_all=True, append_images=rest, quality=quality)
    return out.getvalue()


def page(kind: str, seed: int, dpi: int = 100) -> Page:
    return Page(kind, draw_page(kind, random.Random(f"{kind}-{seed}"), dpi))


def scan_pdf(kind: str, seed: int, dpi: int = 100, quality: int | None = None) -> bytes:
    """A one-page scan of one class."""
    rng = random.Random(f"pdf-{kind}-{seed}")
    return pdf_of([page(kind, seed, dpi).image], dpi, quality or rng.randint(35, 85))


def five_page_scan(kind: str, seed: int, dpi: int = 150) -> bytes:
    """A 5-page proposal scan: plain text pages, the class's page last but one or first."""
    rng = random.Random(f"five-{kind}-{seed}")
    grey = kind in GREY_CLASSES
    filler = "grey_plain" if grey else "signatures"
    at = rng.choice((0, 3, 4))
    pages = [page(kind if i == at else filler, seed * 10 + i, dpi).image for i in range(5)]
    return pdf_of(pages, dpi, rng.randint(40, 85))


def corpus(
    per_class: int, make: Callable[[str, int], bytes] = scan_pdf
) -> Iterator[tuple[str, bytes]]:
    """``per_class`` PDFs of every class, in a fixed order."""
    for seed in range(per_class):
        for kind in CLASSES:
            yield kind, make(kind, seed)
