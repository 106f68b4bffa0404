"""lerobot-stream: fast streaming of LeRobot v3 datasets into PyTorch.

Public names are re-exported here; implementation modules are private.
"""

from __future__ import annotations

__version__ = "0.1.0"
