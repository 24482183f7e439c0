"""Drawing one built-in face: FACS action units mixed from the six emotions on the canonical template."""
from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

from ..constants import TEMPLATE
from .face_params import AU_INDEX, DARK, mix_colour

#: Drawing scale before the box downsample (anti-aliasing).
SUPERSAMPLE = 3


@functools.lru_cache(maxsize=None)
def _basis(n: int) -> np.ndarray:
    """(n, 3) Bernstein weights of a quadratic Bezier (cached: rendering calls it thousands of times)."""
    t = np.linspace(0.0, 1.0, n)
    return np.stack([(1 - t) ** 2, 2 * t * (1 - t), t ** 2], 1)


@functools.lru_cache(maxsize=None)
def _circle(n: int) -> np.ndarray:
    """(n, 2) unit circle points (cached)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1)


def _bezier(p0, p1, p2, n: int = 10) -> np.ndarray:
    """Points on the quadratic Bezier p0 -> p2 with control p1, shape (n, 2)."""
    return _basis(n) @ np.array([p0, p1, p2], dtype=float)


def _through(p0, mid, p2, n: int = 10) -> np.ndarray:
    """Quadratic curve from p0 to p2 passing through `mid` at t = 0.5."""
    ctrl = 2 * np.asarray(mid, float) - 0.5 * (np.asarray(p0, float) + np.asarray(p2, float))
    return _bezier(p0, ctrl, p2, n)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> np.ndarray:
    """Ellipse outline as a polygon (so it rotates with the pose like every other shape)."""
    return _circle(n) * (rx, ry) + (cx, cy)


class _Pen:
    """Draws canonical-coordinate shapes onto a supersampled canvas through the pose similarity."""

    def __init__(self, draw: ImageDraw.ImageDraw, mat: np.ndarray, off: np.ndarray, scale: float):
        self.draw, self.mat, self.off, self.scale = draw, mat, off, scale

    def xy(self, pts: np.ndarray, shift: float = 0.0) -> list[float]:
        return (np.asarray(pts) @ self.mat.T + self.off + shift).ravel().tolist()

    def poly(self, pts: np.ndarray, fill) -> None:
        # Measured (PIL 10-13): polygon fill already follows the continuous convention.
        self.draw.polygon(self.xy(pts), fill=fill)

    def line(self, pts: np.ndarray, fill, width: float) -> None:
        # Lines are centred on pixel index c, i.e. continuous c + 0.5: shift by -0.5.
        self.draw.line(self.xy(pts, -0.5), fill=fill, width=max(1, round(width * self.scale)), joint="curve")


def _draw_face(pen: _Pen, idt: dict, au: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one face; return its five landmarks in canonical coordinates (LANDMARKS order)."""
    a = {name: float(au[i]) for name, i in AU_INDEX.items()}
    skin = idt["skin"]
    skin_c, hair_c = mix_colour(skin, skin, 0), mix_colour(idt["hair"], idt["hair"], 0)  # as int tuples
    line_c = lambda strength: mix_colour(skin, DARK, strength)  # noqa: E731  wrinkle/fold shade
    eyes = TEMPLATE[:2].astype(float) + [[-idt["eye_dx"], idt["eye_dy"]], [idt["eye_dx"], idt["eye_dy"]]]
    nose = TEMPLATE[2].astype(float) + [0, idt["nose_dy"]]
    cx, fcy, fw, fh = 0.5, idt["fcy"], idt["fw"], idt["fh"]
    opening = 0.1 * a["AU26"] + 0.025 * a["AU16"] + 0.008 * a["AU20"] + 0.012 * a["AU12"]

    # Head: hair behind, ears, face outline whose chin drops with the jaw (AU26).
    cos, sin = _circle(40).T
    lower = np.clip(sin, 0, None)
    face = np.stack([cx + fw * cos * (1 - idt["jaw"] * lower ** 2), fcy + fh * sin + 0.6 * opening * lower ** 3], 1)
    if idt["hair_style"] == 2:  # long hair falls behind the face
        pen.poly(np.array([[cx - fw - 0.05, fcy - 0.1], [cx + fw + 0.05, fcy - 0.1],
                           [cx + fw + 0.07, fcy + 0.3], [cx - fw - 0.07, fcy + 0.3]]), hair_c)
    if idt["hair_style"] > 0:
        pen.poly(_ellipse(cx, fcy - 0.06, fw + 0.03, fh + 0.01), hair_c)
    for side in (-1, 1):
        pen.poly(_ellipse(cx + side * fw * 0.98, eyes[0, 1] + 0.05, 0.03, 0.055, 12), mix_colour(skin, DARK, 0.08))
    pen.poly(face, skin_c)
    top = face[face[:, 1] < idt["hairline"]]
    if idt["hair_style"] > 0 and len(top) > 2:  # fringe: top of the outline, slightly enlarged
        fringe = (top - [cx, fcy]) * 1.05 + [cx, fcy]
        pen.poly(np.vstack([fringe, [[fringe[-1, 0], idt["hairline"]], [fringe[0, 0], idt["hairline"]]]]), hair_c)

    # Forehead lines (AU1/AU2) and vertical glabella lines (AU4): faint, subtle cues.
    fl = 0.5 * max(a["AU1"], a["AU2"])
    if fl > 0.05:
        for k in range(3):
            y = eyes[0, 1] - idt["bgap"] - 0.035 - 0.018 * k
            pen.line(_through([cx - 0.09, y], [cx, y - 0.006], [cx + 0.09, y]), line_c(fl), 0.004)
    if a["AU4"] > 0.05:
        for side in (-1, 1):
            x = cx + side * 0.012
            pen.line(np.array([[x, eyes[0, 1] - 0.05], [x - side * 0.003, eyes[0, 1] - 0.022]]),
                     line_c(0.7 * a["AU4"]), 0.004)

    for e, side in ((0, -1), (1, 1)):  # side: direction away from the midline
        ex, ey = eyes[e]
        # Brows: AU1 lifts the inner end, AU2 the outer end, AU4 lowers and knits them.
        by = ey - idt["bgap"]
        inner = [ex - side * (0.03 + 0.014 * a["AU4"]), by - 0.03 * a["AU1"] + 0.022 * a["AU4"]]
        outer = [ex + side * idt["blen"], by + 0.006 - 0.03 * a["AU2"] + 0.01 * a["AU4"]]
        mid = [ex + side * 0.01, by - idt["arch"] - 0.01 * (a["AU1"] + a["AU2"]) + 0.018 * a["AU4"]]
        top_edge = _through(inner, mid, outer)
        thick = idt["bthick"] * np.linspace(1.0, 0.55, len(top_edge))[:, None] * [[0.2 * side, 1.0]]
        pen.poly(np.vstack([top_edge, (top_edge + thick)[::-1]]), mix_colour(hair_c, DARK, 0.55))
        # Eye: upper lid opens with AU5, closes with AU7; lower lid rises with AU6 and AU7.
        ew = idt["ew"]
        hu = max(0.004, idt["hu"] + 0.016 * a["AU5"] - 0.008 * a["AU7"] - 0.003 * a["AU6"])
        hl = max(0.003, idt["hl"] - 0.006 * a["AU7"] - 0.006 * a["AU6"])
        corner_in, corner_out = [ex - side * ew, ey], [ex + side * ew, ey - 0.003]
        upper = _through(corner_in, [ex, ey - hu], corner_out, 12)
        low = _through(corner_in, [ex, ey + hl], corner_out, 12)
        pen.line(_through([ex - side * ew * 0.9, ey - hu - 0.004], [ex, ey - hu - 0.014],
                          [ex + side * ew * 1.05, ey - hu - 0.004]), line_c(0.3), 0.003)  # lid crease
        pen.poly(np.vstack([upper, low[::-1]]), (235, 232, 225))
        for r, col in ((idt["iris"], idt["iris_col"]), (idt["iris"] * 0.45, (12, 10, 10))):
            circ = _ellipse(ex, ey, r, r, 16)
            # Clip the iris to the lid opening (both lids are parabolas in x).
            u2 = np.clip(((circ[:, 0] - ex) / ew) ** 2, 0, 1)
            circ[:, 1] = np.clip(circ[:, 1], ey - hu * (1 - u2), ey + hl * (1 - u2))
            pen.poly(circ, col)
        pen.line(upper, (30, 22, 20), 0.005)  # lashes
        if a["AU6"] > 0.05:  # crow's feet at the outer corner
            for k in (-1, 0, 1):
                p0 = np.array([ex + side * (ew + 0.008), ey + 0.006 * k])
                pen.line(np.array([p0, p0 + [side * 0.02, 0.008 * k]]), line_c(0.5 * a["AU6"]), 0.003)

    # Nose: side lines, base curve, nostrils (raised and widened by AU9), wrinkles (AU9).
    nx, ny = nose
    nw = idt["nw"] * (1 + 0.15 * a["AU9"])
    nost_y = ny + 0.012 - 0.01 * a["AU9"]
    for side in (-1, 1):
        pen.line(_through([nx + side * 0.014, ny - 0.07], [nx + side * 0.02, ny - 0.03],
                          [nx + side * nw, ny - 0.002]), line_c(0.18), 0.004)
        pen.poly(_ellipse(nx + side * nw * 0.55, nost_y, 0.008 + 0.002 * a["AU9"], 0.0045, 10), line_c(0.75))
    pen.line(_through([nx - nw, ny + 0.002], [nx, nost_y + 0.012], [nx + nw, ny + 0.002]), line_c(0.3), 0.004)
    if a["AU9"] > 0.05:
        for k in range(3):
            y = eyes[0, 1] + 0.022 + 0.011 * k
            pen.line(np.array([[nx - 0.014, y], [nx, y - 0.004], [nx + 0.014, y]]), line_c(0.8 * a["AU9"]), 0.003)

    # Mouth corners are landmarks: AU12 up/out, AU15 down, AU20 out, AU23 in, AU26 down/in.
    my = TEMPLATE[3, 1] + idt["mouth_dy"]
    dx = 0.025 * a["AU12"] + 0.04 * a["AU20"] - 0.014 * a["AU23"] - 0.008 * a["AU26"]
    dy = -0.05 * a["AU12"] + 0.035 * a["AU15"] + 0.004 * a["AU20"] + 0.012 * a["AU26"]
    left = np.array([TEMPLATE[3, 0] - dx, my + dy])
    right = np.array([TEMPLATE[4, 0] + dx, my + dy])
    # Nasolabial folds deepen with cheek raise / smile (AU6, AU12) and nose wrinkle (AU9).
    fold = 0.06 + 0.45 * min(1.0, a["AU6"] + a["AU12"] + 0.5 * a["AU9"])
    for c, side in ((left, -1), (right, 1)):
        pen.line(_through([nx + side * (nw + 0.006), ny - 0.004], [c[0] + side * 0.012, (ny + c[1]) / 2],
                          [c[0] + side * 0.014, c[1] + 0.004]), line_c(fold), 0.004)
    press = 1 - 0.55 * a["AU23"]  # lip press thins both lips (subtle)
    stretch = 1 - 0.3 * a["AU20"]
    yui = my - 0.01 * a["AU9"]  # AU9 also lifts the upper lip
    yli = yui + opening
    yuo = yui - idt["tu"] * press * stretch
    ylo = yli + idt["tl"] * press * stretch + 0.006 * a["AU16"]
    lip_c = mix_colour(skin, (170, 50, 60), idt["lip_red"])
    pen.poly(np.vstack([_through(left, [cx, yuo], right), _through(left, [cx, ylo], right)[::-1]]), lip_c)
    upper_in = _through(left, [cx, yui], right)
    if opening > 0.004:
        pen.poly(np.vstack([upper_in, _through(left, [cx, yli], right)[::-1]]), (45, 18, 20))
        if a["AU12"] > 0.3 or a["AU26"] > 0.3:  # teeth show in a broad smile or an open mouth
            pen.poly(np.vstack([upper_in, _through(left, [cx, yui + min(0.5 * opening, 0.012)], right)[::-1]]),
                     (232, 228, 215))
    pen.line(upper_in, mix_colour(lip_c, DARK, 0.45 + 0.35 * a["AU23"]), 0.004)

    # Occluders: glasses-like frames sometimes, a random bar or patch sometimes.
    if rng.uniform() < 0.1:
        frame = mix_colour(rng.uniform(0, 80, 3), rng.uniform(0, 255, 3), rng.uniform(0, 0.3))
        for ex, ey in eyes:
            ring = _ellipse(ex, ey + 0.005, idt["ew"] + 0.02, 0.035, 20)
            pen.line(np.vstack([ring, ring[:1]]), frame, 0.007)
        pen.line(np.array([[eyes[0, 0] + idt["ew"] + 0.02, eyes[0, 1]], [eyes[1, 0] - idt["ew"] - 0.02, eyes[1, 1]]]),
                 frame, 0.006)
    if rng.uniform() < 0.15:
        c0 = rng.uniform(0.2, 0.8, 2)
        half = rng.uniform([0.04, 0.015], [0.14, 0.09])
        ang = rng.uniform(0, np.pi)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        box = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        pen.poly(box @ rot.T + c0, tuple(int(v) for v in rng.integers(0, 256, 3)))
    return np.vstack([eyes, [nose], [left], [right]])


def _blur3(x: np.ndarray, axis: int, w: float) -> np.ndarray:
    """Blur along one axis with the kernel (w, 1 - 2w, w), edges replicated."""
    v = np.moveaxis(x, axis, 0)
    y = v * (1 - 2 * w)
    y[1:] += w * v[:-1]
    y[:-1] += w * v[1:]
    y[0] += w * v[0]
    y[-1] += w * v[-1]
    return np.moveaxis(y, 0, axis)


def render_one(size: int, idt: dict, au: np.ndarray, rng: np.random.Generator,
                noise_bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Render one face at `size` px; return (image uint8 (size,size,3), landmarks (5,2) float32)."""
    ss = size * SUPERSAMPLE
    # Pose: small rotation, scale and shift about the image centre.
    ang = math.radians(rng.uniform(-7, 7))
    scale = rng.uniform(0.93, 1.07)
    shift = rng.uniform(-0.025, 0.025, 2)
    rot = scale * np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    mat = ss * rot
    off = ss * (0.5 + shift) - mat @ [0.5, 0.5]
    bg = rng.uniform(30, 230, 3)
    canvas = Image.new("RGB", (ss, ss), tuple(int(v) for v in bg))
    pen = _Pen(ImageDraw.Draw(canvas), mat, off, ss * scale)
    pts = _draw_face(pen, idt, au, rng)
    img = canvas.reduce(SUPERSAMPLE)  # box filter: the anti-aliasing step
    # Lighting: a linear gradient in a random direction times a brightness; then sensor noise.
    x = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    phi = rng.uniform(0, 2 * np.pi)
    gain = rng.uniform(0.75, 1.15) * (1 + rng.uniform(0, 0.35) * (math.cos(phi) * x[None, :] + math.sin(phi) * x[:, None]))
    out = np.asarray(img, np.float32)
    if rng.uniform() < 0.5:  # defocus: a 3-tap blur per axis (PIL's GaussianBlur costs 5x more)
        out = _blur3(_blur3(out, 0, w := rng.uniform(0.08, 0.25)), 1, w)
    out *= gain[:, :, None]
    # Sensor noise: a random window of a per-call noise bank (drawing fresh normals per image
    # would double the rendering time).
    oy, ox = rng.integers(0, size, 2)
    out += noise_bank[oy:oy + size, ox:ox + size] * rng.uniform(1, 5)
    landmarks = (pts @ mat.T + off) / SUPERSAMPLE
    return np.clip(out, 0, 255).astype(np.uint8), landmarks.astype(np.float32)
