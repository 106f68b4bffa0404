"""lerobot-stream: fast streaming of LeRobot v3 datasets into PyTorch.

Public names are re-exported here; implementation modules are private.
"""

from __future__ import annotations

from lerobot_stream._core import cuda_info
from lerobot_stream.dataset import StreamingLeRobotDataset
from lerobot_stream.decode_stage import DecodeStage
from lerobot_stream.decoding import (
    CudaUnavailableError,
    DecoderCache,
    FrameTimestampError,
    VideoDecoder,
    decode_parallelism,
    default_decoder_cache_capacity,
    frame_stash_bytes_for,
)
from lerobot_stream.remote.cache_state import CacheWriteError
from lerobot_stream.remote.retry import RemoteFileError, RetryPolicy, ServerUnreachableError

__version__ = "0.1.0"

__all__ = [
    "CacheWriteError",
    "CudaUnavailableError",
    "DecodeStage",
    "DecoderCache",
    "FrameTimestampError",
    "RemoteFileError",
    "RetryPolicy",
    "ServerUnreachableError",
    "StreamingLeRobotDataset",
    "VideoDecoder",
    "__version__",
    "cuda_info",
    "decode_parallelism",
    "default_decoder_cache_capacity",
    "frame_stash_bytes_for",
]
