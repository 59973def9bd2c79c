"""Qwen2.5-VL sampling rules (qwen-vl-utils 0.0.10 / 0.0.14 clip range), against hand-computed values."""

from __future__ import annotations

import dataclasses
import random

import pytest

from vpbench.errors import VpbenchError
from vpbench.protocol import Protocol
from vpbench.video.sampler import (
    SamplingError,
    SamplingPlan,
    ceil_by_factor,
    floor_by_factor,
    frame_indices,
    frame_range,
    plan_sampling,
    round_by_factor,
    smart_nframes,
    smart_resize,
    video_max_pixels,
)

FPS2 = Protocol()  # fps=2, min_frames=4, max_frames=768, factor 2


def by_n(n: int) -> Protocol:
    return Protocol(fps=None, nframes=n)


def test_factor_rounding_helpers() -> None:
    assert round_by_factor(5, 2) == 4  # round(2.5) = 2: half to even
    assert round_by_factor(7, 2) == 8  # round(3.5) = 4
    assert round_by_factor(30, 28) == 28
    assert round_by_factor(42, 28) == 56  # round(1.5) = 2
    assert round_by_factor(70, 28) == 56  # round(2.5) = 2
    assert ceil_by_factor(5, 2) == 6 and ceil_by_factor(4, 2) == 4 and ceil_by_factor(0.1, 2) == 2
    assert floor_by_factor(5, 2) == 4 and floor_by_factor(7.6, 2) == 6 and floor_by_factor(1.9, 2) == 0


@pytest.mark.parametrize(
    ("protocol", "total", "fps", "expected"),
    [
        (FPS2, 300, 30.0, 20),  # 10 s * 2 fps
        (FPS2, 30, 30.0, 4),  # 1 s -> 2, raised to min_frames 4
        (FPS2, 3, 30.0, 2),  # max_frames = floor2(min(768, 3)) = 2 wins over min_frames
        (FPS2, 108000, 30.0, 768),  # 1 h -> 7200, capped at max_frames
        (FPS2, 95, 25.0, 6),  # 7.6 -> floor2 -> 6
        (FPS2, 7, 1.0, 6),  # 14 -> capped at floor2(7) = 6
        (Protocol(fps=1.0), 1000, 29.97, 32),  # 33.37 -> 32
        (Protocol(min_frames=5), 30, 30.0, 6),  # min_frames ceil'd to 6
        (Protocol(max_frames=9), 300, 30.0, 8),  # max_frames floor'd to 8
        (Protocol(fps=0.5, min_frames=1), 300, 30.0, 4),  # 5 -> floor2 -> 4 (min 2)
        (by_n(8), 30, 30.0, 8),
        (by_n(7), 30, 30.0, 8),  # round(3.5) = 4
        (by_n(5), 30, 30.0, 4),  # round(2.5) = 2: half to even
        (by_n(9), 30, 30.0, 8),  # round(4.5) = 4
        (by_n(3), 30, 30.0, 4),  # round(1.5) = 2 -> 4
        (by_n(11), 30, 30.0, 12),  # round(5.5) = 6 -> 12
        (by_n(30), 30, 30.0, 30),
        (by_n(16), 108000, 30.0, 16),  # nframes ignores fps and length
    ],
)
def test_smart_nframes(protocol: Protocol, total: int, fps: float, expected: int) -> None:
    assert smart_nframes(protocol, total, fps) == expected


@pytest.mark.parametrize(
    ("protocol", "total"),
    [(FPS2, 1), (by_n(32), 20), (by_n(31), 31), (Protocol(frame_factor=4, min_frames=4), 3)],
)
def test_smart_nframes_errors(protocol: Protocol, total: int) -> None:
    with pytest.raises(SamplingError, match="too short") as info:
        smart_nframes(protocol, total, 30.0)
    assert isinstance(info.value, VpbenchError) and isinstance(info.value, ValueError)
    assert f"{total} frames" in str(info.value)


def test_frame_factor_from_protocol() -> None:
    p4 = Protocol(frame_factor=4)
    assert smart_nframes(p4, 300, 30.0) == 20
    assert smart_nframes(p4, 330, 30.0) == 20  # 22 -> floor4
    assert smart_nframes(dataclasses.replace(p4, fps=None, nframes=10), 300, 30.0) == 8  # round(2.5)=2


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, (0, 299, 300)),
        (2.0, 5.0, (60, 150, 91)),
        (1.01, 100.0, (31, 299, 269)),  # ceil(30.3); end clamped to the duration then total-1
        (None, 0.5, (0, 15, 16)),
        (-3.0, None, (0, 299, 300)),  # start clamped to 0
        (9.0, None, (270, 299, 30)),
    ],
)
def test_frame_range(start: float | None, end: float | None, expected: tuple[int, int, int]) -> None:
    assert frame_range(300, 30.0, start, end) == expected


@pytest.mark.parametrize(("start", "end"), [(5.0, 5.0), (9.99, None), (6.0, 2.0)])
def test_frame_range_errors(start: float | None, end: float | None) -> None:
    with pytest.raises(SamplingError, match="invalid clip range"):
        frame_range(300, 30.0, start, end)
    with pytest.raises(SamplingError):
        frame_range(0, 30.0)
    with pytest.raises(SamplingError):
        frame_range(10, 0.0)


@pytest.mark.parametrize(
    ("n", "start", "end", "expected"),
    [
        (4, 0, 29, [0, 10, 19, 29]),  # 9.667, 19.333
        (3, 0, 9, [0, 4, 9]),  # 4.5 -> 4 (half to even)
        (3, 0, 11, [0, 6, 11]),  # 5.5 -> 6 (half to even)
        (5, 1, 8, [1, 3, 4, 6, 8]),  # 2.75, 4.5 -> 4, 6.25
        (2, 60, 150, [60, 150]),
        (6, 0, 5, [0, 1, 2, 3, 4, 5]),
        (1, 7, 20, [7]),
    ],
)
def test_frame_indices(n: int, start: int, end: int, expected: list[int]) -> None:
    assert frame_indices(n, start, end) == expected


def test_frame_indices_float32_like_torch() -> None:
    # exact value 47*11/22 = 23.5 would round to 24; torch's float32 linspace gives 23.499998 -> 23
    got = frame_indices(23, 0, 47)
    assert got[11] == 23
    assert got[10:13] == [21, 23, 26]


def test_frame_indices_match_torch_linspace() -> None:
    torch = pytest.importorskip("torch")
    rng = random.Random(0)
    cases = [(n, 0, e) for e in range(1, 90) for n in range(2, min(e + 2, 40))]
    for _ in range(150):
        s = rng.choice([0, rng.randint(0, 5000)])
        e = s + rng.randint(1, 300000)
        cases.append((rng.randint(2, min(e - s + 1, 768)), s, e))
    cases += [(23, 0, 47), (307, 0, 172475), (848, 0, 143938), (859, 2389, 149359)]  # FMA-sensitive
    for n, s, e in cases:
        want = torch.linspace(s, e, n).round().long().tolist()
        assert frame_indices(n, s, e) == want, (n, s, e)


@pytest.mark.parametrize(
    ("hw", "kw", "expected"),
    [
        ((48, 64), {}, (56, 56)),  # image defaults, area 3136 == min_pixels
        ((480, 640), {"min_pixels": 100352, "max_pixels": 602112}, (476, 644)),
        ((1080, 1920), {"min_pixels": 100352, "max_pixels": 602112}, (560, 1008)),  # shrink
        ((1080, 1920), {"min_pixels": 100352, "max_pixels": 235200}, (336, 644)),
        ((48, 64), {"min_pixels": 100352, "max_pixels": 602112}, (280, 392)),  # grow
        ((1, 100), {}, (28, 112)),
        ((10, 2000), {}, (28, 1988)),  # ratio exactly 200 is allowed
    ],
)
def test_smart_resize(hw: tuple[int, int], kw: dict[str, int], expected: tuple[int, int]) -> None:
    assert smart_resize(*hw, factor=28, **kw) == expected


def test_smart_resize_errors() -> None:
    with pytest.raises(SamplingError, match="aspect ratio must be smaller than 200"):
        smart_resize(10, 2100)
    with pytest.raises(SamplingError, match="aspect ratio"):
        smart_resize(2100, 10)
    with pytest.raises(SamplingError):
        smart_resize(0, 10)


def test_video_max_pixels() -> None:
    # total_pixels = int(128000*784*0.9) = 90316800
    assert video_max_pixels(FPS2, 768) == 90316800 / 768 * 2 == 235200
    assert video_max_pixels(FPS2, 16) == 602112  # capped at max_pixels
    assert video_max_pixels(FPS2, 2000) == 105369  # floor at int(100352 * 1.05)
    small = Protocol(min_pixels=1000, max_pixels=5000, total_pixels=40000)
    assert video_max_pixels(small, 20) == 4000
    assert video_max_pixels(small, 80) == 1050


def test_plan_long_video() -> None:
    plan = plan_sampling(FPS2, 108000, 30.0, 1080, 1920)
    assert isinstance(plan, SamplingPlan)
    assert plan.n == 768 and (plan.resized_h, plan.resized_w) == (336, 644)
    assert plan.indices[:3] == (0, 141, 282) and plan.indices[-1] == 107999
    assert plan.sample_fps == pytest.approx(768 / 108000 * 30)
    assert plan.timestamps_s[1] == pytest.approx(141 / 30)


def test_plan_clip() -> None:
    plan = plan_sampling(FPS2, 300, 30.0, 48, 64, start_s=2.0, end_s=5.0)
    # 91 frames -> 91/30*2 = 6.07 -> 6 frames over [60, 150]: step 18
    assert plan.indices == (60, 78, 96, 114, 132, 150)
    assert plan.timestamps_s == pytest.approx((2.0, 2.6, 3.2, 3.8, 4.4, 5.0))
    assert plan.sample_fps == pytest.approx(6 / 91 * 30)
    assert (plan.resized_h, plan.resized_w) == (280, 392)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.resized_h = 1  # type: ignore[misc]


def test_plan_too_short_clip() -> None:
    with pytest.raises(SamplingError):
        plan_sampling(by_n(8), 300, 30.0, 48, 64, start_s=1.0, end_s=1.1)  # frames 30..33: 4 < 8
