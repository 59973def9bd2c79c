"""FrameCache: keys, hits, corruption recovery and two racing processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vpbench.errors import MissingMedia
from vpbench.protocol import Protocol
from vpbench.types import Frames
from vpbench.video.cache import FrameCache
from vpbench.video.decode import decode_frames

PROTOCOL = Protocol(fps=None, nframes=4, min_pixels=28 * 28, max_pixels=56 * 56)


def make_video(path: Path, n: int = 30, shift: int = 0) -> Path:
    """64x48 mpeg4 video, frame i solid ((i + shift) * 8 % 256, 0, 128)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"b": "2000000"}
        for i in range(n):
            rgb = np.zeros((48, 64, 3), np.uint8)
            rgb[..., 0], rgb[..., 2] = ((i + shift) * 8) % 256, 128
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.npz"))


def leftovers(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".npz")


def same(a: Frames, b: Frames) -> bool:
    return (
        np.array_equal(a.array, b.array)
        and a.timestamps_s == b.timestamps_s
        and a.source_fps == b.source_fps
        and a.sampler_fingerprint == b.sampler_fingerprint
    )


@pytest.fixture()
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "v.mp4")


def test_miss_then_hit(video: Path, tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    first = cache.get_or_decode(video, PROTOCOL)
    assert (cache.misses, cache.hits) == (1, 0)
    (entry,) = entries(tmp_path / "cache")
    assert entry.parent.name == entry.stem[:2] and len(entry.stem) == 64
    second = cache.get_or_decode(video, PROTOCOL)
    assert (cache.misses, cache.hits) == (1, 1)
    assert same(first, second) and same(first, decode_frames(video, PROTOCOL))
    assert second.array.shape == (4, 56, 56, 3) and second.array.dtype == np.uint8
    assert leftovers(tmp_path / "cache") == []
    # a fresh cache object (another run) hits the stored entry
    again = FrameCache(tmp_path / "cache")
    assert same(again.get_or_decode(video, PROTOCOL), first) and again.hits == 1


def test_key_parts(video: Path, tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    base = cache.key(video, PROTOCOL, None, None)
    assert cache.key(video, PROTOCOL, None, None) == base
    assert cache.key(video, Protocol(fps=None, nframes=6, min_pixels=784, max_pixels=3136), None, None) != base
    assert cache.key(video, PROTOCOL, 0.1, None) != base
    assert cache.key(video, PROTOCOL, None, 0.9) != base
    # prompt / decoding fields are not part of the sampler: same frames
    prompt_only = Protocol(fps=None, nframes=4, min_pixels=784, max_pixels=3136, prompt_template="Q: {question}")
    assert cache.key(video, prompt_only, None, None) == base
    # touching the file changes mtime_ns
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cache.key(video, PROTOCOL, None, None) != base


def first_byte_decoder(path: Path, protocol: Protocol, start_s: Any, end_s: Any) -> Frames:
    """Fake decoder: one 2x2 frame filled with the file's first byte."""
    value = Path(path).read_bytes()[0]
    return Frames(np.full((1, 2, 2, 3), value, np.uint8), (0.0,), 30.0, protocol.sampler_fingerprint())


def test_replaced_content_same_size_and_mtime(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x01" + b"x" * 5000)
    st = video.stat()
    cache = FrameCache(tmp_path / "cache", decoder=first_byte_decoder)
    assert cache.get_or_decode(video, PROTOCOL).array[0, 0, 0, 0] == 1
    video.write_bytes(b"\x02" + b"x" * 5000)  # same size
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    assert video.stat().st_mtime_ns == st.st_mtime_ns
    assert cache.get_or_decode(video, PROTOCOL).array[0, 0, 0, 0] == 2  # the edge hash changed
    assert (cache.misses, cache.hits) == (2, 0) and len(entries(tmp_path / "cache")) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncate", "wrong_fingerprint"])
def test_corrupt_entry_is_replaced(video: Path, tmp_path: Path, damage: str) -> None:
    cache = FrameCache(tmp_path / "cache")
    good = cache.get_or_decode(video, PROTOCOL)
    (entry,) = entries(tmp_path / "cache")
    if damage == "garbage":
        entry.write_bytes(b"not an npz at all")
    elif damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:200])
    else:
        np.savez(entry, frames=good.array, timestamps=np.asarray(good.timestamps_s), fps=30.0, fingerprint="other")
    cache = FrameCache(tmp_path / "cache")
    got = cache.get_or_decode(video, PROTOCOL)
    assert (cache.misses, cache.hits) == (1, 0)
    assert same(got, good)
    (entry2,) = entries(tmp_path / "cache")
    assert entry2 == entry
    assert same(FrameCache(tmp_path / "cache").get_or_decode(video, PROTOCOL), good)


def test_missing_video_stores_nothing(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    with pytest.raises(MissingMedia, match="missing"):
        cache.get_or_decode(tmp_path / "absent.mp4", PROTOCOL)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MissingMedia, match="empty"):
        cache.get_or_decode(empty, PROTOCOL)
    assert entries(tmp_path / "cache") == []


def slow_decode(path: Path, protocol: Protocol, start_s: Any, end_s: Any) -> Frames:
    """decode_frames that holds the race window open so both processes miss."""
    frames = decode_frames(path, protocol, start_s, end_s)
    time.sleep(0.5)
    return frames


def _worker(root: str, video: str, barrier: Any, queue: Any) -> None:
    cache = FrameCache(root, decoder=slow_decode)
    barrier.wait()
    frames = cache.get_or_decode(video, PROTOCOL)
    queue.put((cache.misses, frames.array.tobytes(), frames.timestamps_s))


def test_two_processes_race(video: Path, tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    root = tmp_path / "cache"
    procs = [ctx.Process(target=_worker, args=(str(root), str(video), barrier, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [r[0] for r in results] == [1, 1]  # both decoded: a real race
    assert results[0][1:] == results[1][1:]
    assert len(entries(root)) == 1 and leftovers(root) == []
    reader = FrameCache(root)
    got = reader.get_or_decode(video, PROTOCOL)
    assert reader.hits == 1 and got.array.tobytes() == results[0][1]


def test_identity_hashes_the_tail_of_large_files(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = bytearray(b"v" * (3 << 20))
    big.write_bytes(bytes(data))
    st = big.stat()
    cache = FrameCache(tmp_path / "cache")
    k1 = cache.key(big, PROTOCOL, None, None)
    data[-1] = ord("w")  # change inside the last MiB, keep size and mtime
    big.write_bytes(bytes(data))
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.key(big, PROTOCOL, None, None) != k1
    data[-1], data[(3 << 20) // 2] = ord("v"), ord("w")  # a change in the middle is not seen (by design)
    big.write_bytes(bytes(data))
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.key(big, PROTOCOL, None, None) == k1
