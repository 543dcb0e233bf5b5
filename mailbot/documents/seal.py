"""Find an official seal (公章) on one rendered page: a compact ring of red ink, 3–5 cm across.

mailbot.documents.ink counts the page's red ink first, without numpy; only a
page with enough of it comes here.

No OCR: the finder looks at shapes of red ink only. A pixel is red ink when
its red channel stands well above green and blue (faint pink and dark red
alike, vermilion and crimson, not orange or purple). The red pixels are
gathered into 1.5 mm cells, and cells less than a cell apart join one
region; a region is a seal candidate when it is of a seal's printed size
(2.4–6 cm across, at most 1.8 times as long as wide: round, oval or square).
What tells a seal from red title text or a red logo is its outline: from the
region's centre, the outermost red ink in each direction lies on one smooth,
closed, thin line (a ring or a square's border, broken here and there where
it crosses black text), and the inside holds ink but is not filled. A red
heading's outermost ink jumps from character to character; a logo is
smaller or filled; a line or underline is not compact.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mailbot.documents.ink import CHROMA, COLOUR_PIXELS_PER_CM2, MIN_SIZE_CM, RED_MARGIN, RED_MIN

Image = npt.NDArray[np.uint8]  # height x width x 3, RGB

CELL_MM = 1.5
MAX_SIZE_CM = 6.5
MAX_ASPECT = 1.8
SECTORS = 72
MIN_CONFIDENCE = 0.5
# A seal is drawn in strokes; a logo is mostly solid ink.
MAX_SOLID = 0.45


@dataclass(frozen=True)
class SealMark:
    """Where a seal was seen on a page, and how sure the finder is (0–1)."""

    x_cm: float
    y_cm: float
    width_cm: float
    height_cm: float
    confidence: float


def colour_pixels(rgb: Image) -> int:
    """How many pixels of the page are in colour (not black, white or grey)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]  # per channel: far faster than axis=2
    hi = np.maximum(np.maximum(r, g), b)
    lo = np.minimum(np.minimum(r, g), b)
    return int(np.count_nonzero((hi - lo) >= CHROMA))


def in_colour(rgb: Image, px_per_cm: float) -> bool:
    """Whether the page shows colour at all (a grey scan with JPEG noise does not)."""
    area = rgb.shape[0] * rgb.shape[1] / (px_per_cm * px_per_cm)
    return bool(colour_pixels(rgb) >= max(20.0, COLOUR_PIXELS_PER_CM2 * area))


def red_ink(rgb: Image) -> npt.NDArray[np.bool_]:
    """The pixels of red ink: red well above green and blue, neither orange nor purple."""
    r = rgb[..., 0].astype(np.int16)
    g = rgb[..., 1].astype(np.int16)
    b = rgb[..., 2].astype(np.int16)
    top = np.maximum(g, b)
    red: npt.NDArray[np.bool_] = (r - top >= RED_MARGIN) & (r >= RED_MIN)
    # Orange has green far above blue; purple has blue far above green.
    red &= np.abs(g - b) * 2 <= (r - np.minimum(g, b))
    return red


def find_seal(
    rgb: Image, px_per_cm: float, red: npt.NDArray[np.bool_] | None = None
) -> SealMark | None:
    """The most seal-like region of red ink on the page (``red``, when marked already), or None."""
    red = red_ink(rgb) if red is None else red
    if np.count_nonzero(red) < (MIN_SIZE_CM * px_per_cm) ** 2 * 0.05:
        return None
    cell = max(1, round(px_per_cm * CELL_MM / 10))
    cells = _cells(red, cell)
    best: SealMark | None = None
    for top, left, bottom, right in _regions(cells):
        y0, x0, y1, x1 = top * cell, left * cell, (bottom + 1) * cell, (right + 1) * cell
        mark = _judge_region(red[y0:y1, x0:x1], px_per_cm, x0, y0)
        if mark is not None and (best is None or mark.confidence > best.confidence):
            best = mark
    return best


def _cells(red: npt.NDArray[np.bool_], cell: int) -> npt.NDArray[np.bool_]:
    """Which cells of cell x cell pixels hold red ink."""
    h, w = red.shape
    hc, wc = -(-h // cell), -(-w // cell)
    padded = np.zeros((hc * cell, wc * cell), dtype=np.bool_)
    padded[:h, :w] = red
    counts = padded.reshape(hc, cell, wc, cell).sum(axis=(1, 3))
    inked: npt.NDArray[np.bool_] = counts >= 1
    return inked


def _regions(cells: npt.NDArray[np.bool_]) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (top, left, bottom, right, in cells) of inked cells joined across one gap."""
    # Grow each inked cell by one, so that ink a cell apart joins one region.
    grown = cells.copy()
    grown[1:, :] |= cells[:-1, :]
    grown[:-1, :] |= cells[1:, :]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    seen = np.zeros_like(grown)
    h, w = grown.shape
    boxes = []
    for y, x in zip(*np.nonzero(grown), strict=True):
        if seen[y, x]:
            continue
        seen[y, x] = True
        queue = deque([(int(y), int(x))])
        top, left, bottom, right = int(y), int(x), int(y), int(x)
        while queue:
            cy, cx = queue.popleft()
            top, bottom = min(top, cy), max(bottom, cy)
            left, right = min(left, cx), max(right, cx)
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < h and 0 <= nx < w and grown[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        boxes.append((top, left, bottom, right))
    return boxes


def _judge_region(
    red: npt.NDArray[np.bool_], px_per_cm: float, x0: int, y0: int
) -> SealMark | None:
    """A seal mark for this region of red ink if it is shaped like a seal, else None."""
    ys, xs = np.nonzero(red)
    if len(ys) == 0:
        return None
    height = (ys.max() - ys.min() + 1) / px_per_cm
    width = (xs.max() - xs.min() + 1) / px_per_cm
    if not (MIN_SIZE_CM <= max(width, height) <= MAX_SIZE_CM and min(width, height) >= 1.6):
        return None
    if max(width, height) / min(width, height) > MAX_ASPECT:
        return None
    cy = (ys.max() + ys.min()) / 2
    cx = (xs.max() + xs.min()) / 2
    dy, dx = ys - cy, xs - cx
    radius = np.hypot(dy, dx)
    sector = ((np.arctan2(dy, dx) + math.pi) / (2 * math.pi) * SECTORS).astype(np.int64)
    sector = np.minimum(sector, SECTORS - 1)
    outer = np.zeros(SECTORS)
    np.maximum.at(outer, sector, radius)
    score = _outline_score(outer, radius, sector)
    fill = len(ys) / (height * width * px_per_cm * px_per_cm)
    inside = np.count_nonzero(radius < 0.55 * np.median(outer)) / max(1, len(ys))
    solid = _solid_share(red)
    if score < 0.6 or not (0.06 <= fill <= 0.6) or inside < 0.02 or solid > MAX_SOLID:
        return None
    confidence = min(1.0, score * (1.0 if fill <= 0.5 else (0.6 - fill) * 10))
    if confidence < MIN_CONFIDENCE:
        return None
    return SealMark(
        x_cm=round(float(x0 + xs.min()) / px_per_cm, 1),
        y_cm=round(float(y0 + ys.min()) / px_per_cm, 1),
        width_cm=round(float(width), 1),
        height_cm=round(float(height), 1),
        confidence=round(float(confidence), 2),
    )


def _solid_share(red: npt.NDArray[np.bool_]) -> float:
    """The share of the ink inside solid areas (all eight neighbours inked): a seal is strokes."""
    core = red[1:-1, 1:-1].copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            core &= red[dy : dy + core.shape[0], dx : dx + core.shape[1]]
    return float(np.count_nonzero(core)) / max(1, int(np.count_nonzero(red)))


def _outline_score(
    outer: npt.NDArray[np.float64],
    radius: npt.NDArray[np.float64],
    sector: npt.NDArray[np.int64],
) -> float:
    """How much of the region's outermost ink is one smooth, thin, closed line (0–1).

    Per direction, the outermost ink should lie close to the line drawn by its
    neighbours (the median of the nine directions around it), and just inside
    it the ink should run densely, as a stroke does and a row of characters
    does not.
    """
    ring = np.concatenate([outer[-4:], outer, outer[:4]])
    local = np.median(np.lib.stride_tricks.sliding_window_view(ring, 9), axis=1)
    if local.min() <= 0:
        return 0.0
    on_line = np.abs(outer - local) <= 0.1 * local
    band = radius >= 0.86 * local[sector]
    per_sector = np.bincount(sector[band], minlength=SECTORS)
    arc = local * 2 * math.pi / SECTORS
    dense = per_sector >= 0.8 * arc  # a stroke at least a pixel thick along the arc
    smooth = float(np.mean(np.abs(np.diff(local, append=local[0])) <= 0.12 * local))
    return float(np.mean(on_line & dense)) * min(1.0, smooth / 0.9)
