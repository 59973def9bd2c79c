"""Deterministic procedurally generated scenes with fine-grained motion and ground truth.

Every generator takes a ``numpy.random.Generator`` and a ``Canvas`` (size, fps, frame count) and
returns a ``Scene``: the RGB frames ``[T, H, W, 3]`` uint8, the fps, JSON-ready ``facts`` (the
ground truth, in fixed vocabularies below) and the indices of the frames that show the events.
Same generator state + same arguments → identical frames and facts. Nothing here knows about any
benchmark or question wording: benchmark generators (MotionBench in ``motionbench.py``; MVBench,
Video-MME, VSI-Bench, … written later) pick a scene kind, read ``scene.facts`` and phrase their own
questions and options, using the vocabularies as distractor pools::

    rng = np.random.default_rng(7)
    scene = make_scene("camera", rng, Canvas(), motion="zoom in")
    scene.facts["motion"]            # "zoom in"; distractors: set(CAMERA_MOTIONS) - {"zoom in"}
    scene.facts["caption"]           # one ground-truth sentence (for captioning benchmarks)
    scene.event_groups               # {"camera": (4, 5, ...)}; scene.event_frames = union
    write_mp4(path, scene.frames, scene.fps)

Kinds (``SCENES``) and their facts:

- ``flash``: 1-2 lamps (grey when off, bright yellow when on) each flash ``count`` times (1..5),
  each flash 1-2 frames long, >= 3 dark frames apart. facts: ``lamps`` = [{name, center [x, y],
  radius, count, flashes [[first, last], ...]}]; ``count`` (sum over lamps). Groups: lamp names.
- ``move_order``: red, green and blue shapes (a circle, a square and a triangle, shuffled) in
  three columns; each moves once, in turn, up or down. facts: ``objects`` = [{color, shape, name,
  direction, start [x, y], end [x, y], move [first, last]}] in left-to-right order; ``order`` =
  object names in the order they move. Groups: object names.
- ``camera``: a textured block background seen through a moving camera, static at start and end.
  ``motion`` in ``CAMERA_MOTIONS``. Convention: "pan left" = the camera turns left, so the scene
  content moves RIGHT in the frame; "tilt up" = content moves down; "zoom in" = content grows.
  facts: ``motion``, ``content_shift`` [dx, dy] px (pans), ``zoom`` (final/initial magnification).
- ``destination``: one shape starts at the centre, travels to a ``via`` corner, then to its
  ``destination`` corner (``CORNERS``, ``via`` != ``destination``). facts: ``object``, ``via``,
  ``destination``, ``legs`` [[first, last], [first, last]].
- ``motion_type``: one shape ``motion`` in ``MOTION_TYPES``: bounces (2-3 times) / spins
  (180-270 degrees, ``spin_direction`` clockwise|counterclockwise on screen) / slides across
  (``slide_direction`` "left to right"|"right to left") / shrinks / grows. facts: ``object``,
  ``motion`` and the per-motion extras.

``event_frames`` lists the frames that show an event: every lit frame of a flash; for motion, the
frames whose pixels differ from their predecessor because an object or the camera moved (a
sub-pixel step that leaves the raster unchanged is not an event). Frame 0 is never an event.
All positions are in pixels of the canvas, x to the right, y down. Scenes use a mid-grey
background with faint static noise; objects use saturated colours so they stand out at any size
the model's processor resizes them to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from vpbench.errors import ConfigError

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 235),
    "yellow": (235, 215, 40), "magenta": (215, 50, 205), "orange": (245, 140, 30),
    "cyan": (40, 205, 215),
}
SHAPES = ("circle", "square", "triangle")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
CAMERA_MOTIONS = ("pan left", "pan right", "tilt up", "tilt down", "zoom in", "zoom out")
MOTION_TYPES = ("bounce", "spin", "slide", "shrink", "grow")
LAMP_OFF = (75, 72, 60)
LAMP_ON = (255, 240, 110)
BACKGROUND = 100


@dataclass(frozen=True)
class Canvas:
    """Frame size (even), frame rate and length of a generated clip."""

    width: int = 128
    height: int = 96
    fps: float = 10.0
    n_frames: int = 30

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 32:
            raise ConfigError(f"Canvas: width/height must be even and >= 32, got {self.width}x{self.height}")
        if self.fps <= 0 or self.n_frames < 16:
            raise ConfigError(f"Canvas: need fps > 0 and n_frames >= 16, got {self.fps}, {self.n_frames}")


@dataclass(frozen=True, eq=False)
class Scene:
    """A generated clip: ``frames`` [T, H, W, 3] uint8 RGB at ``fps`` plus its ground truth."""

    kind: str
    frames: np.ndarray
    fps: float
    facts: Mapping[str, Any]
    event_groups: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def event_frames(self) -> tuple[int, ...]:
        return tuple(sorted({t for g in self.event_groups.values() for t in g}))

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


# -- drawing -------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, c: Canvas) -> np.ndarray:
    noise = rng.integers(-3, 4, size=(c.height, c.width, 1))
    return np.clip(BACKGROUND + noise, 0, 255).astype(np.uint8).repeat(3, axis=2)


def shape_mask(shape: str, cx: float, cy: float, size: float, angle: float, h: int, w: int) -> np.ndarray:
    """Boolean [h, w] mask of ``shape`` centred at (cx, cy), radius ~``size`` px.

    ``angle`` (radians) turns the shape clockwise on screen (y points down). The triangle is an
    arrow-like isosceles triangle whose tip points along ``angle`` (0 = right), so its orientation
    is never ambiguous.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    ca, sa = math.cos(angle), math.sin(angle)
    u, v = dx * ca + dy * sa, -dx * sa + dy * ca  # shape-local coordinates
    if shape == "circle":
        return dx * dx + dy * dy <= size * size
    if shape == "square":
        s = size * 0.9
        return (np.abs(u) <= s) & (np.abs(v) <= s)
    if shape == "triangle":
        tip, b1, b2 = (1.4 * size, 0.0), (-0.8 * size, 0.85 * size), (-0.8 * size, -0.85 * size)
        def side(p: tuple[float, float], q: tuple[float, float]) -> np.ndarray:
            return (q[0] - p[0]) * (v - p[1]) - (q[1] - p[1]) * (u - p[0])
        s1, s2, s3 = side(tip, b1), side(b1, b2), side(b2, tip)
        return ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))
    raise ConfigError(f"shape_mask: unknown shape {shape!r}; use one of {SHAPES}")


def _paint(frame: np.ndarray, mask: np.ndarray, rgb: tuple[int, int, int]) -> None:
    frame[mask] = np.asarray(rgb, dtype=np.uint8)


def _moved_frames(positions: np.ndarray) -> tuple[int, ...]:
    """Frames t >= 1 whose per-frame state (rows of ``positions``) differs from frame t-1."""
    diff = np.any(np.abs(np.diff(positions, axis=0)) > 1e-6, axis=tuple(range(1, positions.ndim)))
    return tuple(int(t) + 1 for t in np.nonzero(diff)[0])


def _visible(frames: np.ndarray, candidates: tuple[int, ...]) -> tuple[int, ...]:
    """The ``candidates`` (frames whose scene state changed) whose pixels differ from frame t-1.

    A sub-pixel change of position / size / angle can leave the rasterised frame unchanged; such a
    frame shows nothing new and is not an event frame.
    """
    return tuple(t for t in candidates if t > 0 and np.any(frames[t] != frames[t - 1]))


def _split_slack(rng: np.random.Generator, slack: int, parts: int) -> np.ndarray:
    return rng.multinomial(max(slack, 0), np.full(parts, 1.0 / parts))


def _ramp(n: int, start: int, length: int) -> np.ndarray:
    """[n] progress in [0, 1]: 0 up to ``start``, linear over ``length`` frames, then 1."""
    return np.clip((np.arange(n) - start) / float(length), 0.0, 1.0)


def _pick(rng: np.random.Generator, pool: tuple[str, ...] | list[str], value: str | None, what: str) -> str:
    if value is None:
        return str(pool[int(rng.integers(len(pool)))])
    if value not in pool:
        raise ConfigError(f"{what}: {value!r} is not one of {tuple(pool)}")
    return value


# -- scenes ----------------------------------------------------------------------------------------
def _flash_schedule(rng: np.random.Generator, n: int, count: int) -> list[list[int]]:
    lengths = rng.integers(1, 3, size=count)
    lead, tail, gap = 2, 1, 3
    slack = n - lead - tail - int(lengths.sum()) - gap * (count - 1)
    if slack < 0:
        raise ConfigError(f"flash: {count} flashes do not fit in {n} frames")
    extra = _split_slack(rng, slack, count + 1)
    flashes, t = [], lead + int(extra[0])
    for i, length in enumerate(lengths):
        flashes.append([t, t + int(length) - 1])
        t += int(length) + gap + int(extra[i + 1])
    return flashes


def flash_scene(rng: np.random.Generator, canvas: Canvas, counts: tuple[int, ...] | None = None,
                n_lamps: int = 1) -> Scene:
    """Lamps that flash ``counts[i]`` times (random 1..5 each when None); see module docstring."""
    if counts is None:
        counts = tuple(int(k) for k in rng.integers(1, 6, size=n_lamps))
    if len(counts) not in (1, 2) or any(not 1 <= k <= 5 for k in counts):
        raise ConfigError(f"flash: need 1-2 lamps with 1..5 flashes each, got counts={counts}")
    c = canvas
    radius = round(0.1 * min(c.width, c.height), 1)
    if len(counts) == 1:
        names = ["lamp"]
        centers = [(float(rng.uniform(0.3, 0.7) * c.width), float(rng.uniform(0.35, 0.65) * c.height))]
    else:
        names = ["left lamp", "right lamp"]
        centers = [(0.28 * c.width, 0.5 * c.height), (0.72 * c.width, 0.5 * c.height)]
    bg = _background(rng, c)
    lamps, on = [], np.zeros((len(counts), c.n_frames), dtype=bool)
    for i, (name, (cx, cy), k) in enumerate(zip(names, centers, counts)):
        flashes = _flash_schedule(rng, c.n_frames, k)
        for a, b in flashes:
            on[i, a:b + 1] = True
        lamps.append({"name": name, "center": [round(cx, 2), round(cy, 2)], "radius": radius,
                      "count": k, "flashes": flashes})
    masks = [shape_mask("circle", cx, cy, radius, 0.0, c.height, c.width) for cx, cy in centers]
    frames = np.repeat(bg[None], c.n_frames, axis=0)
    for t in range(c.n_frames):
        for i, m in enumerate(masks):
            _paint(frames[t], m, LAMP_ON if on[i, t] else LAMP_OFF)
    # every lit frame is an event frame; the frame where the lamp goes dark again is not
    groups = {name: tuple(int(t) for t in np.nonzero(on[i])[0]) for i, name in enumerate(names)}
    total = int(sum(counts))
    caption = " ".join(f"The {d['name']} flashes {d['count']} time{'s' * (d['count'] > 1)}." for d in lamps)
    return Scene("flash", frames, c.fps, {"lamps": lamps, "count": total, "caption": caption}, groups)


def move_order_scene(rng: np.random.Generator, canvas: Canvas, order: tuple[str, ...] | None = None) -> Scene:
    """Red, green and blue shapes that each move once, in turn; see module docstring."""
    c = canvas
    colors = ("red", "green", "blue")
    if order is None:
        order = tuple(str(x) for x in rng.permutation(colors))
    if sorted(order) != sorted(colors):
        raise ConfigError(f"move_order: order must be a permutation of {colors}, got {order}")
    shapes = [str(s) for s in rng.permutation(SHAPES)]
    columns = [str(x) for x in rng.permutation(colors)]  # colour in each column, left to right
    move_len, gap, lead = max(3, round(0.15 * c.n_frames)), 3, 3
    slack = c.n_frames - lead - 3 * move_len - 2 * gap - 1
    extra = _split_slack(rng, slack, 4)
    size = 0.09 * min(c.width, c.height)
    dist = 0.3 * c.height
    bg = _background(rng, c)
    objects, tracks, t = {}, {}, lead + int(extra[0])
    starts = {}
    for i, color in enumerate(order):
        starts[color] = t
        t += move_len + gap + int(extra[i + 1])
    for col, color in enumerate(columns):
        shape = shapes[colors.index(color)]
        direction = str(rng.choice(["up", "down"]))
        x0, y0 = (0.2 + 0.3 * col) * c.width, 0.5 * c.height + (dist / 2 if direction == "up" else -dist / 2)
        y1 = y0 - dist if direction == "up" else y0 + dist
        prog = _ramp(c.n_frames, starts[color], move_len)
        tracks[color] = np.stack([np.full(c.n_frames, x0), y0 + (y1 - y0) * prog], axis=1)
        name = f"{color} {shape}"
        objects[color] = {"color": color, "shape": shape, "name": name, "direction": direction,
                          "start": [round(x0, 2), round(y0, 2)], "end": [round(x0, 2), round(y1, 2)],
                          "move": [starts[color] + 1, starts[color] + move_len]}
    frames = np.repeat(bg[None], c.n_frames, axis=0)
    for ti in range(c.n_frames):
        for color in colors:
            x, y = tracks[color][ti]
            m = shape_mask(objects[color]["shape"], x, y, size, -math.pi / 2, c.height, c.width)
            _paint(frames[ti], m, COLORS[color])
    names = [objects[col]["name"] for col in order]
    groups = {objects[col]["name"]: _visible(frames, _moved_frames(tracks[col])) for col in colors}
    caption = (f"First the {names[0]} moves {objects[order[0]]['direction']}, then the {names[1]} moves "
               f"{objects[order[1]]['direction']}, and finally the {names[2]} moves {objects[order[2]]['direction']}.")
    facts = {"objects": [objects[col] for col in columns], "order": names, "caption": caption}
    return Scene("move_order", frames, c.fps, facts, groups)


def _texture(rng: np.random.Generator, h: int, w: int, block: int = 8) -> np.ndarray:
    hb, wb = -(-h // block), -(-w // block)
    cells = rng.integers(30, 226, size=(hb, wb, 3)).astype(np.uint8)
    return cells.repeat(block, axis=0).repeat(block, axis=1)[:h, :w]


def camera_scene(rng: np.random.Generator, canvas: Canvas, motion: str | None = None) -> Scene:
    """A block texture seen through a panning / tilting / zooming camera; see module docstring."""
    c = canvas
    motion = _pick(rng, CAMERA_MOTIONS, motion, "camera")
    margin = int(0.3 * c.width)
    tex = _texture(rng, c.height + 2 * margin, c.width + 2 * margin)
    lead, tail = int(rng.integers(3, 6)), int(rng.integers(2, 5))
    prog = _ramp(c.n_frames, lead, c.n_frames - lead - tail)
    cx0, cy0 = margin + c.width / 2, margin + c.height / 2
    step = {"pan left": (-1, 0), "pan right": (1, 0), "tilt up": (0, -1), "tilt down": (0, 1)}
    travel = 0.8 * margin
    dx, dy = step.get(motion, (0, 0))
    # window scale: < 1 magnifies the content (zoom in), > 1 shows more of it (zoom out)
    end_scale = {"zoom in": 0.6, "zoom out": 1.5}.get(motion, 1.0)
    cxs, cys = cx0 + dx * travel * prog, cy0 + dy * travel * prog
    scales = 1.0 + (end_scale - 1.0) * prog
    ii, jj = np.mgrid[0:c.height, 0:c.width].astype(np.float64) + 0.5
    frames = np.empty((c.n_frames, c.height, c.width, 3), dtype=np.uint8)
    for t in range(c.n_frames):
        s = scales[t]
        rows = np.floor(cys[t] + (ii - c.height / 2) * s).astype(np.int64)
        cols = np.floor(cxs[t] + (jj - c.width / 2) * s).astype(np.int64)
        frames[t] = tex[np.clip(rows, 0, tex.shape[0] - 1), np.clip(cols, 0, tex.shape[1] - 1)]
    state = np.stack([cxs, cys, scales], axis=1)
    facts = {"motion": motion, "content_shift": [round(-dx * travel, 2), round(-dy * travel, 2)],
             "zoom": round(1.0 / end_scale, 4), "motion_frames": [lead + 1, c.n_frames - tail],
             "caption": f"The camera is still, then it {_CAMERA_VERBS[motion]}, then it stops."}
    return Scene("camera", frames, c.fps, facts, {"camera": _visible(frames, _moved_frames(state))})


_CAMERA_VERBS = {"pan left": "pans left", "pan right": "pans right", "tilt up": "tilts up",
                 "tilt down": "tilts down", "zoom in": "zooms in", "zoom out": "zooms out"}


def corner_xy(corner: str, canvas: Canvas) -> tuple[float, float]:
    """Pixel centre of a corner target (20% / 80% of the canvas)."""
    x = 0.2 if corner.endswith("left") else 0.8
    y = 0.22 if corner.startswith("top") else 0.78
    return x * canvas.width, y * canvas.height


def destination_scene(rng: np.random.Generator, canvas: Canvas, destination: str | None = None) -> Scene:
    """One shape goes centre → ``via`` corner → ``destination`` corner; see module docstring."""
    c = canvas
    destination = _pick(rng, CORNERS, destination, "destination")
    via = str(rng.choice([k for k in CORNERS if k != destination]))
    color = str(rng.choice(list(COLORS)))
    shape = str(rng.choice(SHAPES))
    size = 0.09 * min(c.width, c.height)
    leg, lead, pause = max(3, round(0.2 * c.n_frames)), 2, 2
    extra = _split_slack(rng, c.n_frames - lead - 2 * leg - pause - 2, 3)
    s1 = lead + int(extra[0])
    s2 = s1 + leg + pause + int(extra[1])
    p0 = np.array([c.width / 2, c.height / 2])
    p1, p2 = np.array(corner_xy(via, c)), np.array(corner_xy(destination, c))
    a, b = _ramp(c.n_frames, s1, leg)[:, None], _ramp(c.n_frames, s2, leg)[:, None]
    track = p0 + (p1 - p0) * a + (p2 - p1) * b
    bg = _background(rng, c)
    frames = np.repeat(bg[None], c.n_frames, axis=0)
    for t in range(c.n_frames):
        _paint(frames[t], shape_mask(shape, track[t, 0], track[t, 1], size, -math.pi / 2, c.height, c.width),
               COLORS[color])
    name = f"{color} {shape}"
    facts = {"object": name, "color": color, "shape": shape, "start": "center", "via": via,
             "destination": destination, "legs": [[s1 + 1, s1 + leg], [s2 + 1, s2 + leg]],
             "caption": f"The {name} moves from the centre to the {via} corner and then to the {destination} corner."}
    return Scene("destination", frames, c.fps, facts, {name: _visible(frames, _moved_frames(track))})


def motion_type_scene(rng: np.random.Generator, canvas: Canvas, motion: str | None = None) -> Scene:
    """One shape that bounces / spins / slides / shrinks / grows; see module docstring."""
    c = canvas
    motion = _pick(rng, MOTION_TYPES, motion, "motion_type")
    color = str(rng.choice(list(COLORS)))
    shape = "triangle" if motion == "spin" else str(rng.choice(SHAPES))
    lead, tail = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    length = c.n_frames - lead - tail
    u = _ramp(c.n_frames, lead, length)
    base = 0.14 * min(c.width, c.height)
    x = np.full(c.n_frames, c.width / 2)
    y = np.full(c.n_frames, c.height / 2)
    angle = np.full(c.n_frames, -math.pi / 2)
    scale = np.ones(c.n_frames)
    facts: dict[str, Any] = {"motion": motion}
    if motion == "bounce":
        n_b = int(rng.integers(2, 4))
        y = 0.72 * c.height - 0.4 * c.height * np.abs(np.sin(math.pi * n_b * u))
        facts["bounces"] = n_b
        verb = f"bounces {n_b} times"
    elif motion == "spin":
        sign = 1 if rng.random() < 0.5 else -1
        angle = angle + sign * float(rng.uniform(1.0, 1.5)) * math.pi * u
        facts["spin_direction"] = "clockwise" if sign > 0 else "counterclockwise"
        verb = f"spins {facts['spin_direction']}"
    elif motion == "slide":
        sign = 1 if rng.random() < 0.5 else -1
        x = c.width / 2 + sign * 0.3 * c.width * (2 * u - 1)
        facts["slide_direction"] = "left to right" if sign > 0 else "right to left"
        verb = f"slides from {facts['slide_direction']}"
    else:
        s_end = float(rng.uniform(0.35, 0.45))
        scale = 1 + (s_end - 1) * u if motion == "shrink" else s_end + (1 - s_end) * u
        verb = "shrinks" if motion == "shrink" else "grows"
    bg = _background(rng, c)
    frames = np.repeat(bg[None], c.n_frames, axis=0)
    for t in range(c.n_frames):
        _paint(frames[t], shape_mask(shape, x[t], y[t], base * scale[t], angle[t], c.height, c.width),
               COLORS[color])
    name = f"{color} {shape}"
    facts.update({"object": name, "color": color, "shape": shape, "motion_frames": [lead + 1, lead + length],
                  "caption": f"The {name} {verb}."})
    state = np.stack([x, y, angle, scale], axis=1)
    return Scene("motion_type", frames, c.fps, facts, {name: _visible(frames, _moved_frames(state))})


SCENES: dict[str, Callable[..., Scene]] = {
    "flash": flash_scene,
    "move_order": move_order_scene,
    "camera": camera_scene,
    "destination": destination_scene,
    "motion_type": motion_type_scene,
}


def make_scene(kind: str, rng: np.random.Generator, canvas: Canvas | None = None, **params: Any) -> Scene:
    """Build a scene of ``kind`` (a key of ``SCENES``); ``params`` go to its generator."""
    if kind not in SCENES:
        raise ConfigError(f"make_scene: unknown scene kind {kind!r}; known: {sorted(SCENES)}")
    return SCENES[kind](rng, canvas or Canvas(), **params)
