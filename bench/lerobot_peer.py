#!/usr/bin/env python
"""The benchmark's lerobot peer, run in the lerobot oracle's interpreter (.venv-oracle).

``stream_peers.LerobotPeer.run`` starts ``<oracle python> bench/lerobot_peer.py REQUEST.json``; this
builds lerobot 0.6.1's StreamingLeRobotDataset (``stream_peers.LerobotDatasetPeer``), measures it
with ``benchmark_streaming.run_peer`` (the loop every peer runs) and writes the metrics as JSON to the
request's ``out``. Imports nothing from lerobot_stream.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_streaming import run_peer
from stream_peers import BenchConfig, LerobotDatasetPeer


def _jsonable(value: object) -> object:
    return value.item() if hasattr(value, "item") else str(value)


def main() -> int:
    request = json.loads(Path(sys.argv[1]).read_text())
    peer = LerobotDatasetPeer(BenchConfig(**request["cfg"]), request["buffer_size"])
    result = run_peer(peer, argparse.Namespace(**request["args"]))
    Path(request["out"]).write_text(json.dumps(result, default=_jsonable))
    return 0


if __name__ == "__main__":
    sys.exit(main())
