"""CLI: ``python -m lerobot_stream.synth OUT --episodes N [--cameras K] [--depth-cameras D] ...``."""

from __future__ import annotations

import argparse
import sys

from ..cli_help import argument_parser
from .cameras import CAMERA_STORAGES
from .video import CODECS
from .writer import write_dataset_with_report


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the synthetic dataset writer."""
    p = argument_parser(
        "python -m lerobot_stream.synth",
        "Write a synthetic LeRobot v3.0 dataset laid out exactly as lerobot 0.6.x writes it: real video\n"
        "encodes with several episodes per mp4, data and episode parquet files, tasks, stats, info.json.\n"
        "Every RGB frame carries its (episode, frame, camera) identity in its pixels.",
    )
    p.add_argument("out", help="dataset root to create (must not exist or be empty, unless --overwrite)")
    p.add_argument("--episodes", type=int, required=True, help="number of episodes")
    p.add_argument("--cameras", type=int, default=2, help="number of RGB cameras")
    p.add_argument("--depth-cameras", type=int, default=0, help="number of depth cameras (uint16 mm)")
    p.add_argument(
        "--camera-storage",
        choices=CAMERA_STORAGES,
        default="video",
        help="video: mp4 files; image: PNG/TIFF bytes in the data parquet (lerobot's use_videos=False)",
    )
    p.add_argument("--height", type=int, default=480, help="frame height in pixels, even")
    p.add_argument("--width", type=int, default=640, help="frame width in pixels, even")
    p.add_argument("--codec", choices=sorted(CODECS), default="av1", help="codec of the RGB videos")
    p.add_argument("--fps", type=int, default=30, help="frames per second")
    p.add_argument("--min-length", type=int, default=30, help="shortest episode in frames")
    p.add_argument("--max-length", type=int, default=120, help="longest episode in frames")
    p.add_argument("--seed", type=int, default=0, help="seed of all content and lengths")
    p.add_argument("--tasks", type=int, default=1, help="number of distinct tasks")
    p.add_argument("--state-dim", type=int, default=6, help="size of observation.state and action")
    p.add_argument("--robot-type", default="synthetic", help="robot_type written to info.json")
    p.add_argument("--data-file-size-mb", type=float, default=100, help="data parquet size cap in MB")
    p.add_argument("--video-file-size-mb", type=float, default=200, help="mp4 size cap in MB")
    p.add_argument("--chunks-size", type=int, default=1000, help="files per chunk folder")
    p.add_argument("--gop", type=int, default=2, help="keyframe interval of the RGB videos")
    p.add_argument("--crf", type=int, default=30, help="constant rate factor of the RGB videos")
    p.add_argument(
        "--preset", default=None, help="encoder preset (default: 10 for av1, the encoder's own otherwise)"
    )
    p.add_argument(
        "--encoder-threads", type=int, default=None, help="threads per encoder (default: the encoder decides)"
    )
    p.add_argument("--no-faststart", action="store_true", help="write the mp4 sample table after the media")
    p.add_argument(
        "--mid-gop-every",
        type=int,
        default=0,
        metavar="N",
        help="one encoder per video file, every N-th episode of a file starting mid-GOP; 0: off "
        "(lerobot's layout)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    preset: int | str | None = args.preset
    if isinstance(preset, str) and preset.lstrip("-").isdigit():
        preset = int(preset)
    try:
        report = write_dataset_with_report(
            args.out,
            num_episodes=args.episodes,
            num_cameras=args.cameras,
            depth_cameras=args.depth_cameras,
            camera_storage=args.camera_storage,
            height=args.height,
            width=args.width,
            codec=args.codec,
            fps=args.fps,
            seed=args.seed,
            min_length=args.min_length,
            max_length=args.max_length,
            num_tasks=args.tasks,
            state_dim=args.state_dim,
            robot_type=args.robot_type,
            data_files_size_in_mb=args.data_file_size_mb,
            video_files_size_in_mb=args.video_file_size_mb,
            chunks_size=args.chunks_size,
            gop=args.gop,
            crf=args.crf,
            preset=preset,
            faststart=not args.no_faststart,
            mid_gop_every=args.mid_gop_every,
            encoder_threads=args.encoder_threads,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as err:
        parser.error(str(err))
    cameras = args.cameras + args.depth_cameras
    frames = report.total_frames * cameras
    print(
        f"wrote {report.root}: {report.total_episodes} episodes, {report.total_frames} frames"
        f" x {cameras} cameras, {report.video_files} mp4 + {report.data_files} data files"
        f" in {report.seconds:.1f} s "
        f"({frames / report.seconds:.0f} encoded frames/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
