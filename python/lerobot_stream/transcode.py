"""``python -m lerobot_stream.transcode SRC DST --codec hevc|h264``: re-encode a v3 dataset's videos.

LeRobot's default codec is AV1, which Hopper (H100/H200), A100 and Turing GPUs cannot decode with
NVDEC; H.264 and HEVC decode on every NVIDIA GPU. This rewrites every ``videos/**.mp4`` of a
LeRobot v3 dataset (written by lerobot or by ``lerobot_stream.synth``) with another codec and copies
everything else::

    python -m lerobot_stream.transcode SRC DST --codec hevc|h264 [--gop N] [--crf Q] [--preset P]
        [--workers K] [--overwrite]

or ``transcode_dataset(src, dst, codec=...)`` from Python. ``--workers`` encodes that many files at
once in separate processes (each encoder also uses its own threads). Errors (``ValueError`` /
``FileExistsError``, exit status 2 from the command line) name the file: SRC not a v3 dataset,
DST already there without ``--overwrite``, an unsupported codec or setting, a depth-map video.

Note [Frame-exact transcoding]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Each mp4 is decoded once, in presentation order, and every frame is re-encoded with the same
presentation time (pts rounded to the 1/fps grid the file was written on), so the files keep their
frame count, their episodes' ``from_timestamp``/``to_timestamp`` and every frame's time: the episodes
metadata and data parquet are copied unchanged, and only the video features' ``info`` in
``meta/info.json`` (codec, pixel format, GOP, CRF, preset) is updated. The default GOP of 2 keeps
random access as cheap as LeRobot's AV1 files (about 1.5 frames decoded per frame read).
The result is written next to DST and renamed into place only when complete.

Note [No B-frames in transcoded files]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
libx264/libx265 reserve B-frame reordering by default even at GOP 2: packets then carry
``dts < pts``, the first dts is negative, and the mp4 muxer hides the delay behind an edit list.
Readers that honour edit lists still see pts 0, 1/fps, ... but readers that do not (raw demuxers in
front of NVDEC) would see every frame shifted. We encode with ``bf=0`` (recorded as lerobot's
``video.extra_options``), so the transcoded files have the same timing structure as LeRobot's AV1
files: dts == pts, first pts 0, no edit list, and decode order is presentation order. At GOP 2 this
costs nothing (there is no room for a B-frame between keyframes); at large GOPs files grow a little.

Output frames are 8-bit yuv420p (NVDEC's NV12 path on every NVIDIA GPU); sources in other 8-bit
colour formats are converted. Depth-map features (``is_depth_map``, 12-bit grey) are refused: converting
them to yuv420p would lose their values.

Everything else (``meta/episodes``, ``meta/tasks``, ``meta/stats.json``, ``data/``) is copied byte for
byte; image statistics therefore describe the source frames, which the new ones match within codec
tolerance.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av

from lerobot_stream.cli_help import argument_parser
from lerobot_stream.synth.video import EncoderSettings, probe_video_info

TargetCodec = Literal["hevc", "h264"]
TARGET_CODECS: tuple[str, ...] = ("hevc", "h264")
DEFAULT_CRF = {"hevc": 28, "h264": 23}  # the encoders' own defaults
MAX_CRF = 51  # x264/x265 CRF range is 0..51
NO_B_FRAMES = {"bf": "0"}  # Note [No B-frames in transcoded files]


def transcode_dataset(
    src: str | Path,
    dst: str | Path,
    *,
    codec: TargetCodec = "hevc",
    gop: int = 2,
    crf: int | None = None,
    preset: str | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> Path:
    """Writes a copy of the v3 dataset ``src`` at ``dst`` with its videos re-encoded to ``codec``.

    Args:
        codec: ``"hevc"`` (libx265) or ``"h264"`` (libx264), both decodable by NVDEC on every NVIDIA GPU.
        gop, crf, preset: encoder settings (``crf`` default: 28 for HEVC, 23 for H.264).
        workers: video files encoded in parallel processes.
        overwrite: replace an existing ``dst``.

    Raises:
        ValueError: ``src`` is not a LeRobot v3 dataset, or a bad codec/setting.
        FileExistsError: ``dst`` exists and ``overwrite`` is not set.
    """
    src, dst = Path(src), Path(dst)
    if codec not in TARGET_CODECS:
        raise ValueError(f"codec must be one of {list(TARGET_CODECS)}, got {codec!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    crf = DEFAULT_CRF[codec] if crf is None else crf
    if not 0 <= crf <= MAX_CRF:
        raise ValueError(f"crf must be in [0, {MAX_CRF}] for {codec}, got {crf}")
    info = _read_info(src)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst}: exists (pass overwrite=True / --overwrite to replace it)")
    settings = EncoderSettings(codec=codec, gop=gop, crf=crf, preset=preset, extra_options=NO_B_FRAMES)

    staging = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(src, staging, ignore=lambda folder, names: [n for n in names if n.endswith(".mp4")])
        videos = sorted(p.relative_to(src) for p in (src / "videos").rglob("*.mp4"))
        jobs = [(str(src / rel), str(staging / rel), settings) for rel in videos]
        if workers == 1:
            for job in jobs:
                _transcode_file(*job)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                list(pool.map(_transcode_file, *zip(*jobs, strict=True)))
        for key, feature in info["features"].items():
            if feature.get("dtype") != "video":
                continue
            first = next((staging / rel for rel in videos if rel.parts[1] == key), None)
            if first is None:
                raise ValueError(f"{src}: video feature {key!r} has no file under videos/{key}/")
            feature["info"] = {**feature.get("info", {}), **probe_video_info(first, settings)}
        (staging / "meta" / "info.json").write_text(json.dumps(info, indent=4))
        if dst.exists():
            shutil.rmtree(dst)
        staging.rename(dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dst


def _read_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise ValueError(f"{root}: not a LeRobot v3 dataset (no meta/info.json)")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise ValueError(f"{path}: codebase_version {version!r} is not a LeRobot v3 dataset")
    if not isinstance(info.get("features"), dict):
        raise ValueError(f"{path}: has no 'features' mapping")
    for key, feature in info["features"].items():
        video_info = feature.get("info") or {}
        if feature.get("dtype") == "video" and (
            video_info.get("is_depth_map") or video_info.get("video.is_depth_map")
        ):
            raise ValueError(
                f"{path}: video feature {key!r} is a depth map, which transcoding does not support"
            )
    return info


def _transcode_file(src: str, dst: str, settings: EncoderSettings) -> int:
    """Re-encodes one mp4 frame by frame, keeping every frame's presentation time; returns the count."""
    try:
        return _reencode(src, dst, settings)
    except (av.FFmpegError, IndexError) as error:  # IndexError: the file has no video stream
        raise ValueError(f"{src}: cannot transcode ({type(error).__name__}: {error})") from error


def _reencode(src: str, dst: str, settings: EncoderSettings) -> int:
    os.environ.setdefault("SVT_LOG", "1")
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with av.open(src) as source:
        video = source.streams.video[0]
        fps = Fraction(video.base_rate or video.average_rate)
        count = 0
        last_pts = -1
        with av.open(dst, "w") as target:
            stream = target.add_stream(settings.encoder_name, rate=fps, options=settings.options())
            stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
            for frame in source.decode(video):
                if frame.pts is None:
                    raise ValueError(f"{src}: frame #{count} has no presentation timestamp")
                pts = round(frame.pts * video.time_base * fps)  # on the 1/fps grid
                if pts <= last_pts:
                    raise ValueError(
                        f"{src}: frame #{count} at {float(frame.pts * video.time_base):.6f}s is not "
                        f"on a distinct 1/{fps} step (variable frame rate is not supported)"
                    )
                out = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
                out.pts, out.time_base = pts, Fraction(1, 1) / fps
                target.mux(stream.encode(out))
                last_pts = pts
                count += 1
            target.mux(stream.encode(None))
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(
        "python -m lerobot_stream.transcode",
        "Re-encode every video of a LeRobot v3 dataset with H.264 or HEVC, frame-exact (same frames,\n"
        "timestamps and file layout), so GPUs without AV1 NVDEC (H100/H200, A100, Turing) decode it\n"
        "in hardware. Everything but the videos and their info in meta/info.json is copied as is.",
        "Depth-map videos are refused (they would lose their 12-bit values). Errors exit with status 2.",
    )
    parser.add_argument("src", type=Path, help="the LeRobot v3 dataset to read")
    parser.add_argument("dst", type=Path, help="where the transcoded copy is written (must not exist)")
    parser.add_argument("--codec", choices=TARGET_CODECS, default="hevc", help="codec of the new videos")
    parser.add_argument("--gop", type=int, default=2, help="keyframe interval in frames (random access cost)")
    parser.add_argument(
        "--crf", type=int, default=None, help="quality, lower is better (default: 28 for hevc, 23 for h264)"
    )
    parser.add_argument(
        "--preset", default=None, help="encoder speed preset (default: the encoder's, medium)"
    )
    parser.add_argument("--workers", type=int, default=1, help="video files encoded at once, in processes")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    args = parser.parse_args(argv)
    try:
        out = transcode_dataset(
            args.src,
            args.dst,
            codec=args.codec,
            gop=args.gop,
            crf=args.crf,
            preset=args.preset,
            workers=args.workers,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as error:
        print(f"transcode: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({args.codec})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
