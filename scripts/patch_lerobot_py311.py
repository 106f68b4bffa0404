"""Rewrite the Python 3.12-only typing syntax of an installed lerobot 0.6.1 so it imports on Python 3.11.

lerobot 0.6.1 declares requires-python >=3.12, but its only 3.12-only constructs are seven PEP 695
typing forms (``type X = ...`` aliases and ``class C[T]`` / ``def f[T: B]`` generics) in five files.
Each is replaced by its pre-3.12 spelling (plain alias, ``typing.Generic`` / ``typing.TypeVar``); no
runtime logic changes. Idempotent. Exits non-zero if any lerobot module still fails to parse.

Usage: python scripts/patch_lerobot_py311.py   (patches the lerobot importable by this python)
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

# (file under lerobot/, 3.12 text, 3.11 replacement)
REWRITES: list[tuple[str, str, str]] = [
    (
        "processor/pipeline.py",
        "class DataProcessorPipeline[TInput, TOutput](HubMixin):",
        "class DataProcessorPipeline(HubMixin, __import__('typing').Generic[TInput, TOutput]):",
    ),
    ("motors/motors_bus.py", "type NameOrID = str | int", "NameOrID = str | int"),
    ("motors/motors_bus.py", "type Value = int | float", "Value = int | float"),
    (
        "datasets/streaming_dataset.py",
        "class Backtrackable[T]:",
        "T = __import__('typing').TypeVar('T')\n\n\nclass Backtrackable(__import__('typing').Generic[T]):",
    ),
    ("datasets/aggregate.py", "type FeatureDict = ", "FeatureDict = "),
    ("datasets/aggregate.py", "type ChunkFile = ", "ChunkFile = "),
    ("datasets/aggregate.py", "type VideoIndexState = ", "VideoIndexState = "),
    (
        "utils/io_utils.py",
        "def deserialize_json_into_object[T: JsonLike](",
        "T = __import__('typing').TypeVar('T')\n\n\ndef deserialize_json_into_object(",
    ),
]


def main() -> int:
    spec = importlib.util.find_spec("lerobot")
    if spec is None or not spec.submodule_search_locations:
        print("patch_lerobot_py311: lerobot is not installed", file=sys.stderr)
        return 1
    root = Path(next(iter(spec.submodule_search_locations)))
    for rel, old, new in REWRITES:
        path = root / rel
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new, 1))
    failures = []
    for path in sorted(root.rglob("*.py")):
        try:
            ast.parse(path.read_text(), filename=str(path))
        except SyntaxError as e:
            failures.append(f"{path}:{e.lineno}: {e.msg}")
    for line in failures:
        print(f"patch_lerobot_py311: still not valid here: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
