"""Synthetic LeRobot v3.0 datasets with real video encodes, laid out exactly as lerobot 0.6.x writes them.

``write_dataset(root, num_episodes=..., ...)`` (or ``python -m lerobot_stream.synth OUT ...``) writes
``meta/info.json``, ``meta/stats.json``, ``meta/tasks.parquet``, ``meta/episodes/chunk-000/file-000.parquet``,
``data/chunk-XXX/file-XXX.parquet`` and ``videos/<key>/chunk-XXX/file-XXX.mp4`` (several episodes per
mp4, several mp4 per camera once the size cap is reached). Every video frame carries its identity in
its pixels; ``read_identity`` gets (episode_index, frame_index) back from a decoded RGB image.

Note [Timestamps]
~~~~~~~~~~~~~~~~~
As in lerobot, the data parquet stores ``timestamp`` as float32 ``frame_index / fps`` (time inside
the episode, starting at 0), and the episodes metadata stores, per camera, the float64
``from_timestamp`` / ``to_timestamp`` of the episode inside its mp4. Frame ``i`` of an episode is
the video frame presented at ``from_timestamp + timestamp`` = ``(frames before the episode in that
file + i) / fps``; pts are exact multiples of 1/fps in the stream's time base (see Note [Episodes
packed in one mp4] in video.py).

Note [SVT-AV1 preset]
~~~~~~~~~~~~~~~~~~~~~
lerobot encodes AV1 with libsvtav1 g=2 crf=30 preset 12. At presets 11 and 12 SVT-AV1 sometimes
leaves a changed block uncoded in an inter frame (measured: ~1 frame in 300–600 at 480x640, more at
small sizes), so that frame shows a stale identity cell and cannot be read back. Preset 10 showed
no such frame in our runs and is ~25% slower, so it is the default here; the codec, GOP, CRF and
pixel format are lerobot's, and ``preset=12`` (``--preset 12``) reproduces lerobot exactly when
identities are not needed. ``video.preset`` in info.json records the preset used.
"""

from __future__ import annotations

from .content import Identity, read_full_identity, read_identity
from .layout import camera_key
from .video import CODECS, EncoderSettings
from .writer import WriteReport, joint_positions, write_dataset, write_dataset_with_report

__all__ = [
    "CODECS",
    "EncoderSettings",
    "Identity",
    "WriteReport",
    "camera_key",
    "joint_positions",
    "read_full_identity",
    "read_identity",
    "write_dataset",
    "write_dataset_with_report",
]
