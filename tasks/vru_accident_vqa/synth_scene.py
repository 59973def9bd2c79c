"""Procedural top-down road-crash clips for the VRU-Accident generator (``synth.py``).

One clip = a bird's-eye road scene of ``CANVAS`` (128x96 px, 10 fps, 30 frames = 3 s): a vehicle
(car / truck / bus, an oriented box) drives along the road and hits a vulnerable road user
(pedestrian = small disc, cyclist = rider disc on a bicycle bar) who crosses its lane. At the
collision frame ``t_c`` a bright flash (2 frames) marks the impact, the road user is thrown and
falls (drawn lying), and the vehicle stops abruptly within 2 frames.

What the pixels encode (each option of the generated VQA maps to one rendering):

- weather and light (``WEATHER_LIGHT``): brightness / tint of the whole scene (day, orange
  evening, dark night with headlight cones, hazy morning) and weather (saturated sunny,
  desaturated grey cloudy, moving rain streaks, falling snow + whitened ground, fog haze).
- location (``LOCATIONS``): what lines the road: grey building blocks and sidewalks (urban),
  lawns, small red-roofed houses and trees (suburban), crop fields and trees (rural), large
  ribbed warehouses and containers (industrial), the sea and a sandy shore (coastal).
- road type (``ROAD_TYPES``): the layout: a 4-lane highway (double yellow centre line, dashed
  lanes), a narrow unmarked alley, a two-lane road with a 4-way intersection or a T-junction
  just after the crossing point, or a roundabout (ring around a green island).
- accident type: vehicle kind by size / shape (car 14x8 px with windscreen, truck 26x10 with
  cab + trailer, bus 28x10 yellow with roof unit) and road-user kind.
- accident cause (``CAUSES``), from behaviour: ``speeding`` = vehicle at 5.5 px/frame (about
  63 km/h at ``METRES_PER_PX``) instead of 2.5 (about 29 km/h); ``sudden dash`` = the road
  user waits at the kerb, then runs; ``blocked view`` = it steps out from behind a parked van;
  ``red light`` = the signal beside the crossing is red (green in every other clip);
  ``inattentive`` = none of these cues (normal speed, steady crossing, green signal).

Every clip is built eastbound (left to right, lane below the centre line: right-hand traffic);
a westbound clip is the same clip turned 180 degrees. Pure numpy + scipy; deterministic given the
generator state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from vpbench.errors import ConfigError
from vpbench.synth.scenes import Canvas, Scene

CANVAS = Canvas(width=128, height=96, fps=10.0, n_frames=30)
METRES_PER_PX = 0.32  # a 14 px car is ~4.5 m
WEATHER_LIGHT = ("sunny day", "cloudy day", "rainy day", "snowy day", "foggy morning", "cloudy evening",
                 "clear night", "rainy night")
LOCATIONS = ("urban", "suburban", "rural", "industrial", "coastal")
ROAD_TYPES = ("highway", "alley", "intersection", "T-junction", "roundabout")
VEHICLES = ("car", "truck", "bus")
VRUS = ("pedestrian", "cyclist")
CAUSES = ("speeding", "inattentive", "sudden dash", "blocked view", "red light")
CLOTHING = {"red": (235, 40, 40), "yellow": (250, 225, 40), "white": (245, 245, 245), "orange": (250, 140, 20),
            "pink": (250, 110, 200), "light blue": (90, 200, 250)}
VEHICLE_COLORS = {"red": (200, 30, 30), "blue": (40, 70, 210), "white": (235, 235, 235), "silver": (175, 180, 185),
                  "dark grey": (60, 62, 66)}
SPEED = {"normal": 2.5, "speeding": 5.5}  # px / frame
VRU_SPEED = {"pedestrian": 0.9, "cyclist": 1.5}  # px / frame, walking / riding
VRU_RUN = {"pedestrian": 2.6, "cyclist": 3.2}  # px / frame, a sudden dash
SIZES = {"car": (14.0, 8.0), "truck": (26.0, 10.0), "bus": (28.0, 10.0)}  # length, width px
ROAD = (88, 88, 92)
WHITE = (225, 225, 225)


@dataclass(frozen=True)
class Layout:
    """Static road geometry (canonical eastbound): road mask, the vehicle's lane as a dense polyline."""

    road: np.ndarray  # [H, W] bool
    lane: np.ndarray  # [N, 2] px, x increasing along the travel direction
    island: np.ndarray  # [H, W] bool (roundabout centre), else all False
    cy: float
    width: float  # main road width px
    junction_x: float | None  # centre of the crossing road (intersection / T-junction)


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return xx, yy


def _rect(c: Canvas, x: float, y: float, length: float, width: float, angle: float) -> np.ndarray:
    xx, yy = _grid(c.height, c.width)
    dx, dy = xx - x, yy - y
    ca, sa = math.cos(angle), math.sin(angle)
    return (np.abs(dx * ca + dy * sa) <= length / 2) & (np.abs(-dx * sa + dy * ca) <= width / 2)


def _disc(c: Canvas, x: float, y: float, r: float) -> np.ndarray:
    xx, yy = _grid(c.height, c.width)
    return (xx - x) ** 2 + (yy - y) ** 2 <= r * r


def _arclen(lane: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(lane, axis=0).T))])


def point_at(lane: np.ndarray, s: float) -> tuple[np.ndarray, float]:
    """(position [2], heading angle rad) at arc length ``s`` px along the lane polyline."""
    cum = _arclen(lane)
    x, y = np.interp(s, cum, lane[:, 0]), np.interp(s, cum, lane[:, 1])
    x2, y2 = np.interp(s + 0.5, cum, lane[:, 0]), np.interp(s + 0.5, cum, lane[:, 1])
    return np.array([x, y]), math.atan2(y2 - y, x2 - x)


def make_layout(road_type: str, c: Canvas, rng: np.random.Generator) -> Layout:
    xx, yy = _grid(c.height, c.width)
    none = np.zeros((c.height, c.width), bool)
    xs = np.arange(-80.0, c.width + 80.0, 0.25)
    if road_type == "roundabout":
        cx, cy, r_lane = c.width / 2, 40.0, 25.0
        r = np.hypot(xx - cx, yy - cy)
        road = ((r >= 16) & (r <= 34)) | ((np.abs(yy - cy) <= 9) & (np.abs(xx - cx) >= 26))
        th = np.linspace(math.pi, 0.0, 200)  # west -> south -> east (counter-clockwise on screen)
        arc = np.stack([cx + r_lane * np.cos(th), cy + r_lane * np.sin(th)], axis=1)
        left = np.stack([xs[xs < cx - r_lane], np.full((xs < cx - r_lane).sum(), cy)], axis=1)
        right = np.stack([xs[xs > cx + r_lane], np.full((xs > cx + r_lane).sum(), cy)], axis=1)
        return Layout(road, np.concatenate([left, arc, right]), r < 14, cy, 18.0, None)
    cy = 48.0
    width = {"highway": 40.0, "alley": 14.0}.get(road_type, 24.0)
    road = np.abs(yy - cy) <= width / 2
    lane_y = {"highway": cy + float(rng.choice([5.0, 15.0])), "alley": cy}.get(road_type, cy + 6.0)
    jx = None
    if road_type in ("intersection", "T-junction"):
        jx = float(rng.uniform(82, 96))
        vertical = np.abs(xx - jx) <= 12
        road |= vertical if road_type == "intersection" else vertical & (yy <= cy)
    return Layout(road, np.stack([xs, np.full(xs.shape, lane_y)], axis=1), none, cy, width, jx)


# -- static background -----------------------------------------------------------------------------
def _environment(location: str, c: Canvas, lay: Layout, rng: np.random.Generator) -> np.ndarray:
    """[H, W, 3] float roadside scenery (the road is painted over it afterwards)."""
    h, w = c.height, c.width
    xx, yy = _grid(h, w)
    dist = ndimage.distance_transform_edt(~lay.road)  # px to the nearest road pixel
    img = np.zeros((h, w, 3), np.float32)
    noise = rng.integers(-6, 7, size=(h, w, 1)).astype(np.float32)
    if location == "urban":
        img[:] = (105, 105, 110)
        for by in range(0, h, 16):
            for bx in range(int(rng.integers(-8, 0)), w, 18):
                g = float(rng.integers(130, 190))
                img[by + 2:by + 14, max(bx + 2, 0):max(bx + 16, 0)] = (g, g, g + 5)
        img[(dist > 0) & (dist <= 3)] = (178, 176, 170)
    elif location == "suburban":
        img[:] = (95, 150, 75)
        for by in range(2, h, 22):
            for bx in range(int(rng.integers(0, 10)), w, 24):
                roof = (165, 70, 50) if rng.random() < 0.6 else (125, 85, 60)
                img[by:by + 8, bx:bx + 10] = roof
                img[_disc(c, bx + 17, by + 12, 3.0)] = (40, 105, 40)
        img[(dist > 0) & (dist <= 2)] = (190, 188, 182)
    elif location == "rural":
        palette = [(150, 170, 70), (190, 170, 95), (110, 150, 60), (140, 110, 70)]
        x0 = 0
        while x0 < w:
            bw = int(rng.integers(12, 22))
            img[:, x0:x0 + bw] = palette[int(rng.integers(len(palette)))]
            x0 += bw
        for x in range(int(rng.integers(2, 10)), w, 14):
            for ys in (range(h), range(h - 1, -1, -1)):  # first spot 5-6 px off the road from above / below
                y = next((y for y in ys if 5.0 <= dist[y, x] <= 6.0), None)
                if y is not None:
                    img[_disc(c, x + 0.5, y + 0.5, 3.0)] = (35, 95, 35)
    elif location == "industrial":
        img[:] = (150, 148, 140)
        for by in range(1, h, 24):
            for bx in range(int(rng.integers(-20, 0)), w, 40):
                img[by:by + 20, max(bx, 0):max(bx + 34, 0)] = (172, 182, 192)
                img[by:by + 20, max(bx, 0):max(bx + 34, 0)][:, ::3] = (140, 150, 160)
                img[by + 21:by + 24, max(bx + 36, 0):max(bx + 40, 0)] = (230, 120, 30)
    elif location == "coastal":
        img[:] = (205, 190, 135)
        water = (yy < lay.cy) & (dist > 7)
        img[water] = (20, 80, 210)
        img[water & ((((xx + 3 * np.sin(yy / 3.0)) // 6) % 3 == 0) & ((yy // 4) % 4 == 0))] = (120, 170, 225)
        img[(yy >= lay.cy) & (dist > 9) & (rng.random((h, w)) < 0.04)] = (110, 140, 70)
    else:
        raise ConfigError(f"unknown location {location!r}; use one of {LOCATIONS}")
    return np.clip(img + noise, 0, 255)


def _paint_road(img: np.ndarray, road_type: str, c: Canvas, lay: Layout, crossing_x: float | None) -> None:
    xx, yy = _grid(c.height, c.width)
    img[lay.road] = ROAD
    img[lay.island] = (60, 135, 60)
    cy, half = lay.cy, lay.width / 2
    dash = (xx // 6) % 2 == 0
    row = np.floor(yy)  # integer pixel row

    def line(y: float) -> np.ndarray:
        return row == math.floor(y)
    outside_junction = np.ones_like(dash) if lay.junction_x is None else np.abs(xx - lay.junction_x) > 12
    if road_type == "highway":
        img[line(cy - 2) | line(cy + 1)] = (235, 200, 40)
        img[(line(cy - 10) | line(cy + 10)) & dash] = WHITE
    elif road_type in ("intersection", "T-junction"):
        img[line(cy) & dash & outside_junction] = WHITE
    if crossing_x is not None:  # zebra: bars along the traffic direction, stacked across the road
        zebra = (np.abs(xx - crossing_x) <= 4) & (np.abs(yy - cy) <= half - 1) & (((yy - cy + half) // 2) % 2 == 0)
        img[zebra] = WHITE


_LIGHT = {"day": (1.0, (0, 0, 0), 1.0), "morning": (0.95, (0, 0, 5), 1.0), "evening": (0.7, (30, 8, -5), 0.85),
          "night": (0.38, (0, 0, 12), 0.7)}
"""light → (background gain, tint added, object gain)."""


def _weather_ground(img: np.ndarray, weather: str, light: str) -> np.ndarray:
    grey = img.mean(axis=2, keepdims=True)
    if weather == "sunny":
        img = np.clip(grey + 1.2 * (img - grey), 0, 255) * 1.05
    elif weather in ("cloudy", "rainy"):
        keep = 0.65 if weather == "cloudy" else 0.75
        img = (grey + keep * (img - grey)) * (0.85 if weather == "cloudy" else 0.8)
    elif weather == "snowy":
        img = 0.55 * img + 0.45 * np.array((235, 238, 242), np.float32)
    gain, tint, _ = _LIGHT[light]
    return np.clip(img * gain + np.array(tint, np.float32), 0, 255)


# -- moving things --------------------------------------------------------------------------------
def _draw_vehicle(f: np.ndarray, c: Canvas, kind: str, color: tuple[int, ...], x: float, y: float, a: float,
                  gain: float, night: bool) -> None:
    length, width = SIZES[kind]
    ux, uy = math.cos(a), math.sin(a)

    def box(off: float, ln: float, wd: float, rgb: tuple[int, ...], g: float = gain) -> None:
        f[_rect(c, x + off * ux, y + off * uy, ln, wd, a)] = np.array(rgb, np.float32) * g

    if kind == "car":
        box(0, length, width, color)
        box(length * 0.18, 2.5, width - 2, (40, 50, 62))
        box(-length * 0.32, 1.5, width - 2, (40, 50, 62))
    elif kind == "truck":
        box(-3.5, length - 7, width, (205, 205, 205))
        box(length / 2 - 3, 6, width - 1, color)
    else:
        box(0, length, width, (235, 190, 30))
        box(0, length * 0.4, width * 0.5, (200, 200, 200))
    if night:  # headlights
        for side in (-1, 1):
            hx = x + (length / 2) * ux - side * (width / 2 - 1.5) * uy
            hy = y + (length / 2) * uy + side * (width / 2 - 1.5) * ux
            f[_disc(c, hx, hy, 1.3)] = (255, 250, 210)


def _headlight_cone(f: np.ndarray, c: Canvas, x: float, y: float, a: float, length: float) -> None:
    xx, yy = _grid(c.height, c.width)
    fx, fy = x + length / 2 * math.cos(a), y + length / 2 * math.sin(a)
    dx, dy = xx - fx, yy - fy
    along = dx * math.cos(a) + dy * math.sin(a)
    across = np.abs(-dx * math.sin(a) + dy * math.cos(a))
    cone = (along > 0) & (along < 34) & (across < 3 + 0.45 * along)
    fall = np.clip(1.0 - along / 34.0, 0, 1)[cone][:, None]
    f[cone] = np.clip(f[cone] + fall * np.array((95, 90, 55), np.float32), 0, 255)


def _draw_vru(f: np.ndarray, c: Canvas, kind: str, rgb: tuple[int, ...], x: float, y: float, a: float,
              fallen: bool, gain: float) -> None:
    """Upright: pedestrian disc r=2.6 / cyclist on a 9 px bike bar heading ``a``; fallen: lying bars."""
    body = np.array(rgb, np.float32) * max(gain, 0.85)
    bike = np.array((30, 30, 30) if gain >= 0.9 else (150, 150, 155), np.float32)
    if kind == "cyclist":
        bx, by = (x - 4 * math.sin(a), y + 4 * math.cos(a)) if fallen else (x, y)
        f[_rect(c, bx, by, 9.0, 2.0, a + (1.2 if fallen else 0.0))] = bike
    if fallen:
        f[_rect(c, x, y, 7.5, 3.5, a + 1.05)] = body
    else:
        f[_disc(c, x, y, 2.6)] = body


def _particles(f: np.ndarray, c: Canvas, weather: str, base: np.ndarray, t: int) -> None:
    h, w = c.height, c.width
    if weather == "rainy":
        for k in range(5):
            p = (base + t * np.array((2.5, 7.0)) + k * np.array((0.35, 1.0))) % (w, h)
            xi, yi = p[:, 0].astype(int), p[:, 1].astype(int)
            f[yi, xi] = 0.4 * f[yi, xi] + 0.6 * np.array((175, 185, 205), np.float32)
    elif weather == "snowy":
        p = (base + t * np.array((0.4, 1.3)) + np.stack([np.sin(t / 2.0 + base[:, 1]), 0 * base[:, 1]], 1)) % (w, h)
        f[p[:, 1].astype(int), p[:, 0].astype(int)] = (250, 250, 252)


# -- the clip -------------------------------------------------------------------------------------
def crash_scene(rng: np.random.Generator, *, weather_light: str, location: str, road_type: str, vehicle: str,
                vru: str, cause: str, canvas: Canvas = CANVAS) -> Scene:
    """Render one crash clip; ``facts`` hold every factor, the timing and the pixel positions."""
    pools = {"weather_light": (weather_light, WEATHER_LIGHT), "location": (location, LOCATIONS),
             "road_type": (road_type, ROAD_TYPES), "vehicle": (vehicle, VEHICLES), "vru": (vru, VRUS),
             "cause": (cause, CAUSES)}
    for name, (value, pool) in pools.items():
        if value not in pool:
            raise ConfigError(f"crash_scene: {name}={value!r} is not one of {pool}")
    c = canvas
    weather, light = weather_light.split()
    lay = make_layout(road_type, c, rng)
    t_c = int(rng.integers(15, 20))
    speed = SPEED["speeding" if cause == "speeding" else "normal"]
    length = SIZES[vehicle][0]
    cum = _arclen(lay.lane)
    if road_type == "roundabout":
        th = float(rng.uniform(0.4, 0.6)) * math.pi  # near the bottom of the ring
        on_ring = np.array([c.width / 2 + 25 * math.cos(th), lay.cy + 25 * math.sin(th)])
        s_c = float(cum[np.argmin(np.hypot(*(lay.lane - on_ring).T))])
        normal, edge = np.array([math.cos(th), math.sin(th)]), 9.0
    else:
        if lay.junction_x is not None:
            cross_x = lay.junction_x - 12 - 6
        else:
            cross_x = float(rng.uniform(56, 76))
        s_c = float(np.interp(cross_x, lay.lane[:, 0], cum))
        # the road user comes from the kerb beside the vehicle's lane, except on two-lane junction roads where
        # a steady crosser may come from the far kerb (crossing the opposite lane first)
        two_lane = road_type in ("intersection", "T-junction")
        near = cause in ("sudden dash", "blocked view") or not two_lane or bool(rng.random() < 0.5)
        lane_y = float(lay.lane[0, 1])
        normal = np.array([0.0, 1.0 if near else -1.0])
        edge = (lay.cy + lay.width / 2 - lane_y) if near else (lane_y - (lay.cy - lay.width / 2))
    contact, heading = point_at(lay.lane, s_c)
    zebra_x = float(contact[0]) if road_type in ("intersection", "T-junction") or (
        cause == "red light" and road_type != "roundabout") else None

    # static background
    bg = _environment(location, c, lay, rng)
    _paint_road(bg, road_type, c, lay, zebra_x)
    tangent = np.array([math.cos(heading), math.sin(heading)])
    van = None
    if cause == "blocked view":
        van = contact - tangent * 15 + normal * (edge + 5)
        bg[_rect(c, van[0], van[1], 20.0, 9.0, heading)] = (70, 85, 135)
        bg[_rect(c, van[0] + 6 * tangent[0], van[1] + 6 * tangent[1], 2.0, 7.0, heading)] = (40, 50, 62)
    if road_type == "roundabout":  # on the island, beside the crossing
        signal = contact - tangent * 6 - normal * 13
    else:  # at the far kerb, just before the crossing
        signal = contact - tangent * 8 - normal * (lay.width - edge + 4)
    bg = _weather_ground(bg, weather, light)
    bg[_rect(c, signal[0], signal[1], 6.0, 6.0, 0.0)] = (25, 25, 25)
    bg[_disc(c, signal[0], signal[1], 2.2)] = (255, 45, 35) if cause == "red light" else (40, 235, 90)

    # motion: vehicle arc length and road-user offset along ``normal`` per frame
    n = c.n_frames
    s_front = np.empty(n)
    for t in range(n):
        s_front[t] = s_c - speed * (t_c - t) if t <= t_c else s_c
    brake = np.cumsum([0.45 * speed, 0.15 * speed])
    s_front[t_c + 1:t_c + 3] = s_c + brake
    s_front[t_c + 3:] = s_c + brake[-1]
    s_vehicle = s_front - length / 2 - 2.0
    walk = VRU_SPEED[vru]
    if cause == "sudden dash":
        wait = edge + 3.0
        d = np.minimum(wait, VRU_RUN[vru] * np.maximum(t_c - np.arange(n), 0))
    else:
        d = walk * np.maximum(t_c - np.arange(n), 0).astype(float)
    throw = 2.0 * speed * np.clip((np.arange(n) - t_c) / 3.0, 0, 1)
    vru_xy = contact + normal * d[:, None] + tangent * throw[:, None] - normal * np.clip(throw, 0, 2.0)[:, None]
    vru_heading = math.atan2(-normal[1], -normal[0])
    moving_from = int(np.nonzero(np.abs(np.diff(d)) > 0)[0][0]) if np.any(np.diff(d)) else 0

    weather_base = rng.uniform(0, 1, size=(60, 2)) * (c.width, c.height)
    gain = _LIGHT[light][2]
    night = light == "night"
    color_name = str(rng.choice(list(VEHICLE_COLORS)))
    clothing = str(rng.choice(list(CLOTHING)))
    frames = np.empty((n, c.height, c.width, 3), np.uint8)
    flash = {t_c: (6.5, (255, 250, 215)), t_c + 1: (4.0, (255, 215, 120))}
    for t in range(n):
        f = bg.copy()
        (vx, vy), va = point_at(lay.lane, float(s_vehicle[t]))
        if night:
            _headlight_cone(f, c, vx, vy, va, length)
        _draw_vru(f, c, vru, CLOTHING[clothing], *vru_xy[t], vru_heading if t <= t_c else heading, t > t_c, gain)
        _draw_vehicle(f, c, vehicle, VEHICLE_COLORS[color_name], vx, vy, va, gain, night)
        _particles(f, c, weather, weather_base, t)
        if weather == "foggy":
            f = 0.5 * f + 0.5 * np.array((195, 197, 200), np.float32)
        if t in flash:
            r, rgb = flash[t]
            f[_disc(c, contact[0], contact[1], r)] = rgb
        frames[t] = np.clip(np.rint(f), 0, 255).astype(np.uint8)

    westbound = bool(rng.random() < 0.5)
    flip = (lambda p: [round(c.width - float(p[0]), 2), round(c.height - float(p[1]), 2)]) if westbound else \
        (lambda p: [round(float(p[0]), 2), round(float(p[1]), 2)])
    if westbound:
        frames = np.ascontiguousarray(frames[:, ::-1, ::-1])
    side_down = (normal[1] > 0) != westbound  # the road user starts below the lane on screen
    stop = t_c + 3
    facts: dict[str, Any] = {
        "weather_light": weather_light, "weather": weather, "light": light, "location": location,
        "road_type": road_type, "vehicle": vehicle, "vehicle_color": color_name, "vru": vru, "clothing": clothing,
        "cause": cause, "direction": "right to left" if westbound else "left to right",
        "vru_from": "lower" if side_down else "upper", "speed_px_per_frame": speed,
        "speed_kmh": round(speed * METRES_PER_PX * c.fps * 3.6),
        "collision_frame": t_c, "flash_frames": [t_c, t_c + 1], "stop_frame": stop,
        "vru_starts_moving": moving_from + 1 if cause == "sudden dash" else 0,
        "contact_xy": flip(contact), "signal": "red" if cause == "red light" else "green",
        "signal_xy": flip(signal), "parked_van_xy": flip(van) if van is not None else None,
        "zebra": zebra_x is not None,
        "stopping_distance_m": round(float(brake[-1]) * METRES_PER_PX, 1),
    }
    groups = {"collision": (t_c, t_c + 1), "sudden stop": (t_c + 1, t_c + 2)}
    return Scene("vru_crash", frames, c.fps, facts, groups)
