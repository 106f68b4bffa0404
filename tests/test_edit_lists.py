"""Clips whose mp4 edit list leaves samples out (H.264 and HEVC with B-frames; the demuxer flags those
samples discard): the frame table lists exactly the frames PyAV decodes, each decodes equal to PyAV's
in sequential and random order, from the whole file and from an episode's byte range; a discarded
sample's time is no frame (FrameTimestampError, as lerobot raises); the sample index flags the
samples PyAV's demuxer flags. Note [Discarded samples] in cpp/av/frame_table.h."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clips import FPS, pyav_frames, write_clip
from lerobot_stream.decoding import FrameTimestampError, VideoDecoder, scan_sample_index
from lerobot_stream.remote.mp4_header import Mp4Header
from lerobot_stream.remote.video_index import FileIndex
from test_byte_source import URL, header_ranges, header_source
from test_decode import MAX_ABS_TOLERANCE, MEAN_ABS_TOLERANCE

NUM_FRAMES = 30
# (lead, tail): frames left before the edit list's start and after its end.
EDITS = {"lead3": (3, 0), "tail1": (0, 1), "lead3_tail2": (3, 2)}
CASES = [(codec, edit) for codec in ("h264", "hevc") for edit in EDITS]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("edit_lists")
    return {
        (codec, edit): write_clip(
            root / f"{codec}_{edit}.mp4", codec, num_frames=NUM_FRAMES, edit_list=EDITS[edit], faststart=True
        )
        for codec, edit in CASES
    }


def demuxed(path: Path) -> tuple[list[av.Packet], float]:
    """PyAV's packets of the video stream (decode order) and its time base in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p for p in container.demux(stream) if p.size], float(stream.time_base)


def assert_frames_equal(got: np.ndarray, want: np.ndarray, what: str) -> None:
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.mean() < MEAN_ABS_TOLERANCE, f"{what}: mean |Δ| {diff.mean():.2f}"
    assert diff.max() <= MAX_ABS_TOLERANCE, f"{what}: max |Δ| {diff.max()}"


def test_clips_have_discarded_samples_and_b_frames(clips: dict[tuple[str, str], Path]) -> None:
    for (codec, edit), path in clips.items():
        packets, _ = demuxed(path)
        lead, tail = EDITS[edit]
        assert len(packets) == NUM_FRAMES
        assert sum(p.is_discard for p in packets) == lead + tail, (codec, edit)
        assert any(p.pts != p.dts for p in packets), f"{codec}: expected B-frames"
        if lead:
            assert packets[0].is_keyframe and packets[0].is_discard, "the edit starts after the keyframe"
        assert len(pyav_frames(path)) == NUM_FRAMES - lead - tail


@pytest.mark.parametrize(("codec", "edit"), CASES)
def test_frames_are_what_pyav_decodes_in_any_order(
    clips: dict[tuple[str, str], Path], codec: str, edit: str
) -> None:
    path = clips[(codec, edit)]
    reference = pyav_frames(path)
    times = sorted(reference)
    decoder = VideoDecoder(str(path))
    assert decoder.frame_times == pytest.approx(times, abs=1e-6)
    assert decoder.info["num_frames"] == len(times)
    assert decoder.info["fps"] == pytest.approx(FPS)
    for t, got in zip(times, decoder.get_frames_at(times).numpy(), strict=True):
        assert_frames_equal(got, reference[t], f"{codec} {edit} sequential t={t}")
    rng = np.random.default_rng(0)
    for i in rng.permutation(len(times)):  # seeks, also to a discarded keyframe
        t = times[i]
        assert_frames_equal(decoder.get_frames_at([t]).numpy()[0], reference[t], f"{codec} {edit} t={t}")


@pytest.mark.parametrize(("codec", "edit"), CASES)
def test_a_discarded_sample_is_no_frame(clips: dict[tuple[str, str], Path], codec: str, edit: str) -> None:
    path = clips[(codec, edit)]
    packets, time_base = demuxed(path)
    decoder = VideoDecoder(str(path))
    discarded = [p.pts * time_base for p in packets if p.is_discard]
    assert discarded
    for t in discarded:
        with pytest.raises(FrameTimestampError, match=f"{path.name}.*no frame within tolerance_s"):
            decoder.get_frames_at([t])


@pytest.mark.parametrize(("codec", "edit"), CASES)
def test_sample_index_flags_what_pyav_discards(
    clips: dict[tuple[str, str], Path], codec: str, edit: str
) -> None:
    path = clips[(codec, edit)]
    packets, _ = demuxed(path)
    index = scan_sample_index(header_source(path, in_memory=True))
    assert index["pts"].tolist() == [p.pts for p in packets]
    assert index["key"].tolist() == [p.is_keyframe for p in packets]
    assert index["discard"].dtype == np.bool_
    assert index["discard"].tolist() == [p.is_discard for p in packets]


def file_index(path: Path) -> FileIndex:
    """The clip's FileIndex as a remote reader builds it (header pieces, libav's sample scan)."""
    data = path.read_bytes()
    packets, _ = demuxed(path)
    media = (min(p.pos for p in packets), max(p.pos + p.size for p in packets))
    return FileIndex.build(
        URL, Mp4Header(len(data), *media, tuple((a, data[a:b]) for a, b in header_ranges(data)))
    )


def assert_range_decodes(path: Path, index: FileIndex, episode: list[float], what: str) -> None:
    data = path.read_bytes()
    reference = pyav_frames(path)
    segment = index.segment(episode[0], episode[-1] + 1 / FPS, FPS)
    decoder = VideoDecoder(index.source(segment, data[segment.begin : segment.end]))
    assert decoder.frame_times == pytest.approx(episode, abs=1e-6)
    for t, got in zip(episode, decoder.get_frames_at(episode[::-1]).numpy()[::-1], strict=True):
        assert_frames_equal(got, reference[t], f"{what} range t={t}")


@pytest.mark.parametrize(("codec", "edit"), CASES)
def test_episode_byte_range_decodes_what_pyav_decodes(
    clips: dict[tuple[str, str], Path], codec: str, edit: str
) -> None:
    """The clip as one episode read from its byte range (the remote path): it starts at the first
    keyframe, a discarded one when the edit list starts after it."""
    path = clips[(codec, edit)]
    assert_range_decodes(path, file_index(path), sorted(pyav_frames(path)), f"{codec} {edit}")


@pytest.mark.parametrize("edit", list(EDITS))
def test_later_episode_byte_range_decodes_what_pyav_decodes(
    clips: dict[tuple[str, str], Path], edit: str
) -> None:
    """The frames from the middle keyframe on, as a later episode (H.264: closed GOPs, as lerobot's
    episodes, each encoded on its own). With the edit list starting after the first samples, libav's
    seek to that keyframe's pts lands on an earlier keyframe, outside the episode's bytes; the
    decoder seeks with the request that lands on it (Note [Segment seek target] in
    cpp/av/demuxer.cpp)."""
    path = clips[("h264", edit)]
    times = sorted(pyav_frames(path))
    packets, time_base = demuxed(path)
    keys = sorted(round(p.pts * time_base, 6) for p in packets if p.is_keyframe and not p.is_discard)
    split = times.index(keys[len(keys) // 2])
    assert 0 < split < len(times) - 1
    assert_range_decodes(path, file_index(path), times[split:], f"h264 {edit}")
