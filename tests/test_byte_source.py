"""Episode segments from fetched byte ranges, from Python: the sample index read from the header
alone equals PyAV's packet scan; every frame of every episode decoded through a ByteSource (pieces in
files or bytes) equals the whole-file decoder's bitwise; the cache keys sources by content; errors
name the URL."""

from __future__ import annotations

import gc
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from clips import textured_frame
from lerobot_stream.decoding import (
    ByteSource,
    DecoderCache,
    FrameTimestampError,
    VideoDecoder,
    scan_sample_index,
)
from lerobot_stream.synth.video import CameraVideoWriter, EncoderSettings

URL = "https://hub.example/datasets/org/name/resolve/main/videos/cam/chunk-000/file-000.mp4"
EPISODES = [12, 9, 15]
FPS = 20


def _yuv(index: int, height: int = 64, width: int = 96) -> np.ndarray:
    rgb = textured_frame(index, height, width)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One multi-episode mp4 per codec, written as lerobot writes them (stream-copied episodes)."""
    out = {}
    for codec in ("av1", "h264", "hevc"):
        root = tmp_path_factory.mktemp(codec)
        settings = EncoderSettings(codec=codec, gop=4, encoder_threads=1)  # h264/hevc: B-frames on
        with CameraVideoWriter(
            root, "cam", settings=settings, fps=FPS, height=64, width=96, file_size_in_mb=100, chunks_size=10
        ) as writer:
            first = 0
            for length in EPISODES:
                writer.write_episode((_yuv(first + i) for i in range(length)), length)
                first += length
        (out[codec],) = writer.paths
    return out


def header_ranges(data: bytes) -> list[tuple[int, int]]:
    """Top-level mp4 boxes, of an mdat only its box header, merged where adjacent."""
    ranges: list[tuple[int, int]] = []
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        elif size == 0:
            size = len(data) - at
        end = at + header if kind == b"mdat" else at + size
        if ranges and ranges[-1][1] == at:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((at, end))
        at += size
    return ranges


def header_source(path: Path, *, in_memory: bool) -> ByteSource:
    data = path.read_bytes()
    pieces = [
        (a, b - a, data[a:b] if in_memory else str(path), 0 if in_memory else a)
        for a, b in header_ranges(data)
    ]
    return ByteSource(URL, len(data), pieces)


def episode_sources(path: Path, *, in_memory: bool) -> list[tuple[ByteSource, list[float]]]:
    """Per episode: a ByteSource (header + the episode's media range) and its frame times (s)."""
    data = path.read_bytes()
    index = scan_sample_index(header_source(path, in_memory=True))
    order = np.argsort(index["pts"])
    time_base = index["time_base_num"] / index["time_base_den"]
    out = []
    first = 0
    for length in EPISODES:
        wanted = order[first : first + length]  # decode-order positions of the episode's frames
        begin, last = int(wanted.min()), int(wanted.max())
        while not index["key"][begin]:
            begin -= 1
        media = (int(index["pos"][begin]), int(index["pos"][last] + index["size"][last]))
        pieces = [
            (a, b - a, data[a:b] if in_memory else str(path), 0 if in_memory else a)
            for a, b in [*header_ranges(data), media]
        ]
        source = ByteSource(URL, len(data), pieces, *media, start_pts=int(index["pts"][begin]))
        out.append((source, sorted(float(p) * time_base for p in index["pts"][wanted])))
        first += length
    return out


@pytest.mark.parametrize("codec", ["av1", "h264", "hevc"])
def test_sample_index_from_header_equals_pyav_packet_scan(files: dict[str, Path], codec: str) -> None:
    index = scan_sample_index(header_source(files[codec], in_memory=False))
    with av.open(str(files[codec])) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size > 0]
        time_base = stream.time_base
    assert len(index["pos"]) == sum(EPISODES)
    assert index["pos"].tolist() == [p.pos for p in packets]
    assert index["size"].tolist() == [p.size for p in packets]
    assert index["pts"].tolist() == [p.pts for p in packets]
    assert index["dts"].tolist() == [p.dts for p in packets]
    assert index["key"].tolist() == [p.is_keyframe for p in packets]
    assert index["key"].dtype == np.bool_ and index["pos"].dtype == np.int64
    assert (index["time_base_num"], index["time_base_den"]) == (time_base.numerator, time_base.denominator)
    assert (index["codec"], index["width"], index["height"]) == (codec, 96, 64)
    if codec == "h264":
        assert (index["pts"] != index["dts"] + (index["pts"][0] - index["dts"][0])).any(), "expected B-frames"


@pytest.mark.parametrize("in_memory", [False, True], ids=["files", "bytes"])
@pytest.mark.parametrize("codec", ["av1", "h264", "hevc"])
def test_every_episode_decodes_bitwise_like_the_whole_file(
    files: dict[str, Path], codec: str, in_memory: bool
) -> None:
    whole = VideoDecoder(files[codec])
    rng = np.random.default_rng(0)
    for source, times in episode_sources(files[codec], in_memory=in_memory):
        segment = VideoDecoder(source)
        assert segment.frame_times == pytest.approx(times, abs=1e-9)
        assert segment.info["path"] == URL
        request = [times[i] for i in rng.permutation(len(times))]
        assert torch.equal(segment.get_frames_at(request), whole.get_frames_at(request))


def test_cache_keys_sources_by_content_and_requests_outside_the_episode_fail(files: dict[str, Path]) -> None:
    episodes = episode_sources(files["h264"], in_memory=True)
    again = episode_sources(files["h264"], in_memory=False)
    assert [s.key for s, _ in episodes] == [s.key for s, _ in again]
    assert episodes[0][0].key.startswith(URL + "#")
    cache = DecoderCache(4)
    whole = VideoDecoder(files["h264"])
    first_t, middle_t = whole.frame_times[0], whole.frame_times[EPISODES[0] + 1]
    assert torch.equal(cache.get_frames_at(episodes[1][0], [middle_t]), whole.get_frames_at([middle_t]))
    cache.get_frames_at(again[1][0], [middle_t])  # same key: the cached decoder
    cache.get_frames_at(str(files["h264"]), [first_t])
    assert (cache.stats()["hits"], cache.stats()["misses"]) == (1, 2)
    # The byte bound counts a segment's in-memory media bytes, which the cached decoder keeps alive.
    in_memory, on_disk = DecoderCache(1), DecoderCache(1)
    in_memory.get_frames_at(episodes[1][0], [middle_t])
    on_disk.get_frames_at(again[1][0], [middle_t])
    media = episodes[1][0].media_end - episodes[1][0].media_begin
    assert in_memory.stats()["bytes"] == on_disk.stats()["bytes"] + media
    with pytest.raises(FrameTimestampError, match="outside the fetched episode range") as error:
        cache.get_frames_at(episodes[1][0], [first_t])
    assert URL in str(error.value)
    # Depth-map codes go through the same cached segment decoder.
    gray = cache.get_gray12_frames_at(episodes[1][0], [middle_t])
    assert torch.equal(gray, DecoderCache(1).get_gray12_frames_at(files["h264"], [middle_t]))


def test_bytes_backing_lives_as_long_as_the_source(files: dict[str, Path]) -> None:
    sources = episode_sources(files["av1"], in_memory=True)
    source, _ = sources[2]
    del sources
    gc.collect()
    decoder = VideoDecoder(source)
    del source
    gc.collect()
    assert decoder.get_frames_at(decoder.frame_times[-1:]).shape == (1, 3, 64, 96)


def test_evictions_on_decode_threads_release_sources_safely(files: dict[str, Path]) -> None:
    """Capacity 1: every request evicts, dropping bytes-backed sources on GIL-released threads."""
    episodes = [s for codec in ("av1", "hevc") for s in episode_sources(files[codec], in_memory=True)]
    wholes = [VideoDecoder(files["av1" if i < len(EPISODES) else "hevc"]) for i in range(len(episodes))]
    times = [ts[len(ts) // 2] for _source, ts in episodes]
    expected = [whole.get_frames_at([t]) for whole, t in zip(wholes, times, strict=True)]
    cache = DecoderCache(1)

    def work(job: int) -> bool:
        i = job % len(episodes)
        return torch.equal(cache.get_frames_at(episodes[i][0], [times[i]]), expected[i])

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert all(pool.map(work, range(30)))
    episodes.clear()
    gc.collect()
    cache.clear()


def test_bad_sources_raise_naming_the_url(files: dict[str, Path], tmp_path: Path) -> None:
    data = files["h264"].read_bytes()
    header = header_ranges(data)
    with pytest.raises(ValueError, match="overlaps") as error:
        ByteSource(URL, len(data), [(0, 100, data[:100], 0), (50, 100, data[50:150], 0)])
    assert URL in str(error.value)
    with pytest.raises(ValueError, match="past the end"):
        ByteSource(URL, 10, [(0, 100, data[:100], 0)])
    with pytest.raises(ValueError, match="start_pts"):
        ByteSource(URL, len(data), [(0, 100, data[:100], 0)], 0, 100)
    with pytest.raises(ValueError, match="backing"):
        ByteSource(URL, len(data), [(0, 100, 12345, 0)])
    with pytest.raises(FileNotFoundError, match="missing-piece"):
        ByteSource(URL, len(data), [(0, 100, str(tmp_path / "missing-piece.bin"), 0)])
    # A header alone cannot be decoded: the read past it is reported, naming the URL.
    with pytest.raises(ValueError, match="outside the fetched ranges") as error:
        VideoDecoder(header_source(files["h264"], in_memory=True))
    assert URL in str(error.value)
    # A truncated header is not an mp4.
    a, b = header[0]
    with pytest.raises(ValueError, match=URL.replace(".", r"\.")):
        scan_sample_index(ByteSource(URL, len(data), [(a, (b - a) // 2, data[a : (a + b) // 2], 0)]))
    # A segment cut inside its last sample is truncated, never a frame.
    source, _ = episode_sources(files["h264"], in_memory=True)[1]
    cut = [(a, b - a, data[a:b], 0) for a, b in header] + [
        (
            source.media_begin,
            source.media_end - 5 - source.media_begin,
            data[source.media_begin : source.media_end - 5],
            0,
        )
    ]
    truncated = ByteSource(URL, len(data), cut, source.media_begin, source.media_end - 5, source.start_pts)
    with pytest.raises(ValueError, match="truncated segment"):
        VideoDecoder(truncated)
