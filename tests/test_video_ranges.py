"""Video headers and episode byte ranges of remote mp4 files, checked with PyAV as the oracle.

Contracts: the header read from a server (faststart or ``moov`` at the end) holds every box but the
media, costs a few small range requests, and lets a demuxer list every sample; an episode's byte
range, fetched alone with the header, decodes to exactly that episode's frames (their identities
read back from the pixels), also for episodes that start mid-GOP and for the first and last
episode of a file; files that cannot be read by ranges are reported, not misread.
"""

from __future__ import annotations

import io
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from lerobot_stream.remote.mp4_header import FIRST_READ, HeaderUnavailableError, Mp4Header, fetch_mp4_header
from lerobot_stream.remote.retry import RetryPolicy
from lerobot_stream.remote.video_index import FileIndex
from lerobot_stream.synth import read_identity
from servers import NginxServer, nginx_binary

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")

FAST = RetryPolicy(retries=4, backoff_s=0.01, max_backoff_s=0.05, timeout_s=5)


def top_level_boxes(path: Path) -> list[tuple[int, bytes, int]]:
    """(offset, type, size) of a local mp4's top-level boxes."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
        size = size or len(data) - offset
        boxes.append((offset, kind, size))
        offset += size
    return boxes


def sparse_file(header: Mp4Header, ranges: list[tuple[int, bytes]] = ()) -> bytes:
    """The file as a reader of ``header`` (and ``ranges``) sees it: zeros where nothing was fetched."""
    data = bytearray(header.size)
    for offset, chunk in [*header.pieces, *ranges]:
        data[offset : offset + len(chunk)] = chunk
    return bytes(data)


def pyav_scan(local: Path) -> Callable[[str, Mp4Header], dict[str, Any]]:
    """A FileIndex scan that lists the samples of the local copy with PyAV (the oracle's view)."""

    def scan(url: str, header: Mp4Header) -> dict[str, Any]:
        with av.open(str(local)) as container:
            stream = container.streams.video[0]
            packets = [p for p in container.demux(stream) if p.size]
            tb = stream.time_base
            return {
                "pos": [p.pos for p in packets],
                "size": [p.size for p in packets],
                "pts": [p.pts for p in packets],
                "dts": [p.dts for p in packets],
                "key": [p.is_keyframe for p in packets],
                "time_base_num": tb.numerator,
                "time_base_den": tb.denominator,
            }

    return scan


def decode_segment(index: FileIndex, local: Path, begin: int, end: int, start_pts: int) -> dict[int, Any]:
    """pts -> RGB frame, decoded by PyAV from the header + bytes [begin, end) only (seek, then flush)."""
    chunk = local.read_bytes()[begin:end]
    header = Mp4Header(index.file_size, *index.media, _pieces(index))
    frames: dict[int, Any] = {}
    with av.open(io.BytesIO(sparse_file(header, [(begin, chunk)])), "r", format="mp4") as container:
        stream = container.streams.video[0]
        container.seek(start_pts, backward=True, any_frame=False, stream=stream)
        packets = []
        for packet in container.demux(stream):
            if not packet.size or packet.pos >= end:
                break
            if packet.pos < begin:
                raise AssertionError(f"demuxer read before the range: {packet.pos} < {begin}")
            packets.append(packet)
        for packet in [*packets, None]:  # None: flush the decoder (B-frames come out last)
            for frame in stream.codec_context.decode(packet):
                frames[frame.pts] = frame.to_ndarray(format="rgb24").transpose(2, 0, 1)
    return frames


def _pieces(index: FileIndex) -> tuple[tuple[int, bytes], ...]:
    out, at = [], 0
    for offset, length in index.pieces:
        out.append((offset, index.blob[at : at + length]))
        at += length
    return tuple(out)


def episodes_of(root: Path) -> list[dict[str, Any]]:
    files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def served_layouts(ranges_dataset, make_dataset, tmp_path_factory):
    """(nginx, {name: local root}) serving the ranges layout and a small non-faststart one."""
    www = tmp_path_factory.mktemp("www")
    roots = {"ranges": ranges_dataset, "tail": make_dataset(faststart=False, codec="h264")}
    for name, root in roots.items():
        shutil.copytree(root, www / name)
    with NginxServer(www) as server:
        yield server, {name: www / name for name in roots}


@pytest.mark.parametrize("layout", ["ranges", "tail"])
def test_header_holds_every_box_but_the_media_and_costs_little(served_layouts, layout):
    server, roots = served_layouts
    for local in sorted(roots[layout].glob("videos/*/*/*.mp4"))[:4]:
        rel = local.relative_to(roots[layout].parent).as_posix()
        server.clear_log()
        header = fetch_mp4_header(f"{server.url}/{rel}", FAST)
        sent = server.bytes_sent()[f"/{rel}"]
        data = local.read_bytes()
        boxes = top_level_boxes(local)
        kinds = [kind for _, kind, _ in boxes]
        assert (kinds.index(b"moov") < kinds.index(b"mdat")) == (layout == "ranges")  # faststart or not
        mdat = next((o, s) for o, k, s in boxes if k == b"mdat")
        assert header.size == len(data)
        assert (header.media_begin, header.media_end) == (mdat[0] + 8, mdat[0] + mdat[1])
        for offset, chunk in header.pieces:
            assert data[offset : offset + len(chunk)] == chunk
        moov = next((o, s) for o, k, s in boxes if k == b"moov")
        assert any(o <= moov[0] and moov[0] + moov[1] <= o + len(c) for o, c in header.pieces)
        assert sent <= header.nbytes + FIRST_READ + 16  # the header, plus at most the first read


def test_episode_ranges_decode_exactly_their_episodes(served_layouts):
    server, roots = served_layouts
    root = roots["ranges"]
    episodes = episodes_of(root)
    fps = 30
    mid_gop = firsts = lasts = 0
    for local in sorted(root.glob("videos/*/*/*.mp4")):
        key = local.parts[-3]
        chunk, file = int(local.parts[-2][6:]), int(local.stem[5:])
        url = f"{server.url}/{local.relative_to(root.parent).as_posix()}"
        index = FileIndex.build(url, fetch_mp4_header(url, FAST), scan=pyav_scan(local))
        restored = FileIndex.from_bytes(index.to_bytes(), "test")
        assert np.array_equal(restored.pos, index.pos) and restored.blob == index.blob
        mine = [
            e
            for e in episodes
            if (e[f"videos/{key}/chunk_index"], e[f"videos/{key}/file_index"]) == (chunk, file)
        ]
        assert len(mine) >= 1
        for e in mine:
            seg = index.segment(e[f"videos/{key}/from_timestamp"], e[f"videos/{key}/to_timestamp"], fps)
            frames = decode_segment(index, local, seg.begin, seg.end, seg.start_pts)
            num, den = index.time_base
            times = {round(pts * num / den * fps): image for pts, image in frames.items()}
            start = round(e[f"videos/{key}/from_timestamp"] * fps)
            for i in range(e["length"]):
                assert read_identity(times[start + i]) == (e["episode_index"], i)
            first_sample = int(np.argmin(np.abs(index.pts * num / den - e[f"videos/{key}/from_timestamp"])))
            mid_gop += not index.key[first_sample]
            firsts += start == 0
            lasts += seg.end == index.media[1]
    assert firsts >= 10 and lasts >= 10  # every file's first and last episode
    assert mid_gop > 0, "the layout should have episodes starting mid-GOP"


def test_files_without_a_usable_sample_table_are_reported(served_layouts):
    server, roots = served_layouts
    local = sorted(roots["ranges"].glob("videos/*/*/*.mp4"))[0]
    fragmented = roots["ranges"].parent / "fragmented.mp4"
    options = {"movflags": "frag_keyframe+empty_moov"}
    with av.open(str(local)) as src, av.open(str(fragmented), "w", options=options) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    with pytest.raises(HeaderUnavailableError, match="fragmented"):
        fetch_mp4_header(f"{server.url}/fragmented.mp4", FAST)
    (roots["ranges"].parent / "text.mp4").write_bytes(b"not an mp4 at all, just text " * 10)
    with pytest.raises(HeaderUnavailableError, match=r"text\.mp4"):
        fetch_mp4_header(f"{server.url}/text.mp4", FAST)
