"""Generated VRU-Accident data in the official layout (used by the VQA and the caption task).

``synth_vru(out_dir, seed, videos_per_source)`` writes, for SRC in CAP_DATA, DADA_2000, DoTA,
MANUAL_DATA::

    <out>/MetaData/<SRC>/<SRC>_VQA_annotation.json   {"./VRU_videos/<SRC>/VRU_<n>.mp4": {6 categories:
                                                        {"question", "options": "A. x, B. y, C. z, D. w", "GT"}}}
    <out>/MetaData/<SRC>/<SRC>_Dense_Caption.json    {"./VRU_videos/<SRC>/VRU_<n>": {"gt": "..."}} (same order)
    <out>/VRU_videos/<SRC>/VRU_<n>.mp4              128x96, 10 fps, 30 frames (3 s), H.264
    <out>/synth_truth.json                           GENERATOR-ONLY ground truth (not an official file)

Each clip is a top-down crash scene from :mod:`.synth_scene` (read its docstring for the pixel
encoding). The questions are the official fixed strings; the options are one raw string as in
the official files. How each category can be answered:

- **weather and light, location, road type, accident type**: from the pixels. Every option of
  these pools has its own rendering, and the distractors are other pool entries (accident type:
  another vehicle kind, the other road-user kind, and one crash without a road user), so
  exactly one option matches the clip.
- **accident reason**: from visible behaviour: vehicle speed (5.5 vs 2.5 px/frame: a relative
  judgement), a road user that waits then runs, a parked van hiding the crossing, or a red signal;
  "does not notice the coming vehicles" is the clip with none of those cues (by elimination).
- **prevention method**: not grounded on its own: one fixed measure per cause, distractors are the
  measures of the other causes, so it follows from the cause.

``synth_truth.json`` = ``{video key: {"src", "stem", "fps", "n_frames", "collision_frame",
"flash_frames", "stop_frame", "event_frames", "event_groups", "facts", "answers": {category:
option text}}}`` (event frames are 0-based indices of the mp4 frames). Video (SRC, n) draws from
its own generator ``default_rng([seed, source index, n])``, so a clip does not change with
``videos_per_source``; the same seed gives byte-identical JSON and identical frames.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vpbench.errors import ConfigError
from vpbench.synth.render import write_mp4

from .synth_scene import CANVAS, CAUSES, LOCATIONS, ROAD_TYPES, VEHICLES, VRUS, WEATHER_LIGHT, crash_scene

SOURCES = ("CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA")
_TAIL = " Choose the correct option (A, B, C, or D) without any explanations."
QUESTIONS: dict[str, str] = {
    "weather and light": "What's the weather and lighting?" + _TAIL,
    "location": "Where did the accident happen?" + _TAIL,
    "road type": "What type of road is shown?" + _TAIL,
    "accident type": "What kind of accident occurred?" + _TAIL,
    "accident reason": "Why did the accident happen?" + _TAIL,
    "prevention method": "How could this accident be prevented?" + _TAIL,
}
"""The official question of each category (the one string used by all 1,000 videos but one)."""
LETTERS = "ABCD"
NON_VRU_CRASHES = ("truck overturns on highway", "motorcycle crashes into a wall", "car rear-ends another vehicle",
                   "motorcycle skids on wet road")


def _reason(cause: str, vru: str) -> str:
    who = vru.capitalize()
    return {
        "speeding": "Driver was speeding and could not stop in time",
        "inattentive": f"{who} does not notice the coming vehicles when crossing the street",
        "sudden dash": f"{who} urgently started to cross the road without looking",
        "blocked view": "Driver's vision was blocked by a parked vehicle",
        "red light": "Driver ran a red light",
    }[cause]


def _prevention(cause: str, vru: str) -> str:
    who = vru.capitalize() + "s"
    return {
        "speeding": "Drivers should obey speed limits",
        "inattentive": f"{who} should always look both ways before crossing the street",
        "sudden dash": f"{who} should cross carefully without rushing and stay alert to traffic",
        "blocked view": "Drivers should slow down when their vision is blocked",
        "red light": "Drivers should stop at red traffic lights",
    }[cause]


def _accident_type(vehicle: str, vru: str) -> str:
    return f"{vehicle} hits a crossing {vru}"


def _pick_others(rng: np.random.Generator, pool: list[str], right: str, k: int) -> list[str]:
    others = [p for p in pool if p != right]
    return [others[i] for i in rng.choice(len(others), size=k, replace=False)]


def _item(rng: np.random.Generator, category: str, right: str, wrong: list[str]) -> dict[str, str]:
    """One official VQA item: options "A. x, B. y, C. z, D. w" with ``right`` at a random letter."""
    texts = [right, *wrong]
    if len(texts) != 4 or len(set(texts)) != 4 or any("," in t for t in texts):
        raise AssertionError(f"bad options for {category!r}: {texts}")
    order = rng.permutation(4)
    options = ", ".join(f"{LETTERS[j]}. {texts[k]}" for j, k in enumerate(order))
    return {"question": QUESTIONS[category], "options": options, "GT": LETTERS[int(np.argmin(order))]}


def vqa_items(rng: np.random.Generator, facts: dict[str, Any]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(the six official items, {category: right option text}) for a clip's ``facts``."""
    veh, vru, cause = facts["vehicle"], facts["vru"], facts["cause"]
    right = {
        "weather and light": facts["weather_light"], "location": facts["location"], "road type": facts["road_type"],
        "accident type": _accident_type(veh, vru), "accident reason": _reason(cause, vru),
        "prevention method": _prevention(cause, vru),
    }
    other_veh = str(rng.choice([v for v in VEHICLES if v != veh]))
    other_vru = next(v for v in VRUS if v != vru)
    wrong = {
        "weather and light": _pick_others(rng, list(WEATHER_LIGHT), facts["weather_light"], 3),
        "location": _pick_others(rng, list(LOCATIONS), facts["location"], 3),
        "road type": _pick_others(rng, list(ROAD_TYPES), facts["road_type"], 3),
        "accident type": [_accident_type(other_veh, vru), _accident_type(veh, other_vru),
                          str(rng.choice(NON_VRU_CRASHES))],
        "accident reason": [_reason(c, vru) for c in _pick_others(rng, list(CAUSES), cause, 3)],
        "prevention method": [_prevention(c, vru) for c in _pick_others(rng, list(CAUSES), cause, 3)],
    }
    return {cat: _item(rng, cat, right[cat], wrong[cat]) for cat in QUESTIONS}, right


_OPENING = {
    "sunny day": "On a sunny day with clear skies and bright daylight",
    "cloudy day": "On a cloudy day under a grey overcast sky",
    "rainy day": "On a rainy day with steady rain falling on a wet road",
    "snowy day": "On a snowy day with falling snow covering the roadside",
    "foggy morning": "On a foggy morning with thick haze reducing visibility",
    "cloudy evening": "On a cloudy evening in dim orange light",
    "clear night": "On a clear night lit only by headlights",
    "rainy night": "On a rainy night with rain streaking through the darkness",
}
_ROAD = {
    "highway": "a wide four-lane highway",
    "alley": "a narrow alley without lane markings",
    "intersection": "a two-lane road just before a four-way intersection",
    "T-junction": "a two-lane road just before a T-junction",
    "roundabout": "a roundabout around a green island",
}
_PLACE = {
    "urban": "an urban area lined with buildings and sidewalks",
    "suburban": "a suburban neighbourhood of small houses, lawns and trees",
    "rural": "a rural area of open fields and scattered trees",
    "industrial": "an industrial zone with large warehouses and shipping containers",
    "coastal": "a coastal area between the sea and a sandy shore",
}
_VEHICLE = {"car": "car", "truck": "truck with a white trailer", "bus": "yellow bus"}


def _because(cause: str, vru: str) -> str:
    return {
        "speeding": "the driver was speeding and could not stop in time",
        "inattentive": f"the {vru} does not notice the coming vehicle",
        "sudden dash": f"the {vru} urgently started to cross without looking",
        "blocked view": "the driver's vision was blocked by a parked vehicle",
        "red light": "the driver ran a red light",
    }[cause]


def caption(facts: dict[str, Any]) -> str:
    """A 90-120-word dense caption that states the same facts as the VQA answers."""
    f = facts
    vru, veh, cause = f["vru"], f["vehicle"], f["cause"]
    who = (f"A pedestrian wearing {_article(f['clothing'])} {f['clothing']} jacket" if vru == "pedestrian"
           else f"A cyclist in {_article(f['clothing'])} {f['clothing']} jersey on a bicycle")
    moves = "walks" if vru == "pedestrian" else "rides"
    vehicle = f"{f['vehicle_color']} car" if veh == "car" else _VEHICLE[veh]
    side = f"the {f['vru_from']} side"
    speed = f"at about {f['speed_kmh']} km/h" + (", far too fast," if cause == "speeding" else "")
    behaviour = {
        "speeding": f"{moves} steadily onto the road from {side} while the vehicle is still far away.",
        "inattentive": f"{moves} steadily from {side} into the vehicle's lane without looking at the traffic.",
        "sudden dash": f"waits at the kerb on {side} and then suddenly rushes across into the vehicle's path.",
        "blocked view": f"emerges from {side} behind a parked van, hidden from the driver until the last moment.",
        "red light": f"{moves} across from {side} on the zebra crossing while the signal facing the vehicle is red.",
    }[cause]
    where = "on the zebra crossing" if f["zebra"] else "in the middle of the lane"
    seconds = f["collision_frame"] / CANVAS.fps
    return (
        f"{_OPENING[f['weather_light']]}, a {vehicle} travels {f['direction']} {speed} along {_ROAD[f['road_type']]} "
        f"in {_PLACE[f['location']]}. {who} {behaviour} The {veh} strikes the {vru} {where} at {seconds:.1f} "
        f"seconds; a flash marks the impact, the {vru} falls and the {veh} stops abruptly. "
        f"So the {_accident_type(veh, vru)} because {_because(cause, vru)}."
    )


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def synth_vru(out_dir: str | Path, seed: int = 0, videos_per_source: int = 2) -> Path:
    """Write ``videos_per_source`` clips per source in the official layout under ``out_dir``."""
    if videos_per_source < 1:
        raise ConfigError(f"synth_vru: videos_per_source must be >= 1, got {videos_per_source}")
    out = Path(out_dir)
    truth: dict[str, Any] = {}
    for si, src in enumerate(SOURCES):
        vqa: dict[str, Any] = {}
        caps: dict[str, Any] = {}
        for n in range(1, videos_per_source + 1):
            rng = np.random.default_rng([seed, si, n])
            factors = {
                "weather_light": str(rng.choice(WEATHER_LIGHT)), "location": str(rng.choice(LOCATIONS)),
                "road_type": str(rng.choice(ROAD_TYPES)), "vehicle": str(rng.choice(VEHICLES)),
                "vru": str(rng.choice(VRUS)), "cause": str(rng.choice(CAUSES)),
            }
            scene = crash_scene(rng, **factors)
            key = f"./VRU_videos/{src}/VRU_{n}.mp4"
            items, answers = vqa_items(rng, dict(scene.facts))
            vqa[key] = items
            caps[key[:-4]] = {"gt": caption(dict(scene.facts))}
            write_mp4(out / key[2:], scene.frames, scene.fps)
            f = scene.facts
            truth[key] = {
                "src": src, "stem": f"VRU_{n}", "fps": scene.fps, "n_frames": scene.n_frames,
                "collision_frame": f["collision_frame"], "flash_frames": f["flash_frames"],
                "stop_frame": f["stop_frame"], "event_frames": list(scene.event_frames),
                "event_groups": {k: list(v) for k, v in scene.event_groups.items()}, "facts": dict(f),
                "answers": answers,
            }
        meta = out / "MetaData" / src
        meta.mkdir(parents=True, exist_ok=True)
        (meta / f"{src}_VQA_annotation.json").write_text(json.dumps(vqa, indent=2) + "\n", encoding="utf-8")
        (meta / f"{src}_Dense_Caption.json").write_text(json.dumps(caps, indent=2) + "\n", encoding="utf-8")
    (out / "synth_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out
