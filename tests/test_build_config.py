"""The build's CUDA detection (Note [CUDA build requirements] in CMakeLists.txt), on the real CMake.

A machine with nvcc but without FFmpeg's nv-codec-headers (many GPU images) must still build:
``LRS_CUDA=AUTO`` configures the CPU-only module and says what it skipped and why, ``LRS_CUDA=ON``
fails with that reason. The headers are hidden from CMake's search with ``CMAKE_IGNORE_PATH`` (the
directory that holds ``ffnvcodec/``), which is what a machine without them looks like to
``find_path``; a control run without hiding shows the CUDA sources are then built.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADER = "ffnvcodec/dynlink_nvcuvid.h"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed"),
    pytest.mark.skipif(
        shutil.which("nvcc") is None and not Path("/usr/local/cuda/bin/nvcc").exists(),
        reason="nvcc is not installed: the fallback under test needs a machine with nvcc",
    ),
]


def header_dirs() -> list[str]:
    """Every include directory that holds the nv-codec-headers on this machine."""
    return [d for d in ("/usr/include", "/usr/local/include") if (Path(d) / HEADER).exists()]


def configure(build: Path, cuda: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = ["cmake", "-S", str(REPO), "-B", str(build), f"-DLRS_CUDA={cuda}", "-DLRS_BUILD_PYTHON=OFF"]
    return subprocess.run([*command, *extra], capture_output=True, text=True, timeout=600)


def hidden() -> list[str]:
    dirs = header_dirs()
    return [f"-DCMAKE_IGNORE_PATH={';'.join(dirs)}"] if dirs else []


def test_auto_without_nv_codec_headers_builds_cpu_only_and_says_why(tmp_path: Path) -> None:
    done = configure(tmp_path / "auto", "AUTO", *hidden())
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "skipping the CUDA sources" in output and "nv-codec-headers" in output, output
    assert "lerobot_stream: CUDA sources OFF" in output


def test_on_without_nv_codec_headers_fails_with_the_reason(tmp_path: Path) -> None:
    done = configure(tmp_path / "on", "ON", *hidden())
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "LRS_CUDA=ON but the CUDA sources cannot be built" in output, output
    assert "nv-codec-headers" in output and "libffmpeg-nvenc-dev" in output


@pytest.mark.skipif(not header_dirs(), reason="nv-codec-headers are not installed here (no control run)")
def test_auto_with_everything_present_builds_the_cuda_sources(tmp_path: Path) -> None:
    done = configure(tmp_path / "control", "AUTO")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "lerobot_stream: CUDA sources ON" in output and "skipping" not in output
