"""``--help`` of the command-line tools: every option shows its default and a description, in plain text.

Runs the tools as users do (``python -m`` and the installed ``lerobot-stream-bench`` script).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The installed script next to this interpreter (a venv that is not activated), else on PATH.
BENCH = Path(sys.executable).with_name("lerobot-stream-bench")
COMMANDS = {
    "transcode": [sys.executable, "-m", "lerobot_stream.transcode", "--help"],
    "synth": [sys.executable, "-m", "lerobot_stream.synth", "--help"],
    "bench": [str(BENCH) if BENCH.exists() else shutil.which("lerobot-stream-bench") or "", "--help"],
}
RST = re.compile(r"``|:class:|:func:|:meth:|~~~|Note \[")


def option_blocks(text: str) -> dict[str, str]:
    """``--option`` → its help text, from argparse's options section."""
    section = text.split("options:", 1)[1]
    blocks: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^  (-\w, )?(--[\w-]+)", line)
        if match:
            current = match.group(2)
            blocks[current] = line[match.end() :]
        elif current and line.startswith("   "):
            blocks[current] += " " + line.strip()
        elif not line.strip():
            current = None
    return blocks


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_lists_every_option_with_default_and_description(name: str) -> None:
    done = subprocess.run(COMMANDS[name], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert not RST.search(text), f"raw reST in --help: {RST.search(text)}"
    blocks = option_blocks(text)
    assert len(blocks) >= 4, text
    for option, help_text in blocks.items():
        if option == "--help":
            continue
        words = re.sub(r"[A-Z_]{2,}|\{[^}]*\}", "", help_text).strip()
        assert "(default:" in help_text or "(required)" in help_text, f"{name} {option}: {help_text!r}"
        assert len(words.split()) >= 3, f"{name} {option} has no description: {help_text!r}"
