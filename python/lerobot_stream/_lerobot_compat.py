"""Importing lerobot 0.6.1 (the reference we compare with) on Python 3.11 with torch+cpu.

Used only by the value-parity tests (``tests/oracle.py``) and the benchmark's lerobot peer
(``bench/stream_peers.py``); the package itself never imports lerobot. ``scripts/install_lerobot_oracle.sh``
installs lerobot 0.6.1 with its PEP 695 lines rewritten for 3.11; this module adds the two run-time
shims that import needs, neither of which touches lerobot's read path:

* ``torchvision._meta_registrations`` is replaced by an empty module before torchvision is imported:
  PyPI's torchvision is a CUDA build whose compiled ops do not load next to torch+cpu, and its
  import-time fake-kernel registrations for those ops (used only by ``torch.compile``) would fail.
* ``av.option`` (gone in PyAV >= 16) gets a placeholder ``Option`` class: lerobot uses it only in
  annotations of its encoder-option checks, evaluated when ``pyav_utils`` is imported.

It also keeps lerobot off the network (``HF_HUB_OFFLINE=1``) and its ``datasets`` cache out of the
user's home.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import tempfile
import types


def prepare_lerobot_import() -> None:
    """Installs the shims and the offline environment; call before importing lerobot."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="lrs-lerobot-hf-"))
    name = "torchvision._meta_registrations"
    if name not in sys.modules and "torchvision" not in sys.modules:
        stub = types.ModuleType(name)
        stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = stub
    import av

    if not hasattr(av, "option"):
        av.option = types.SimpleNamespace(Option=object)  # type: ignore[attr-defined]
