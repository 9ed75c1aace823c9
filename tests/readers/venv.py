"""The training stacks' readers in a virtual environment of their own (requirements.txt says why not in
tokenmill's): built on first use, once per machine, and rebuilt when requirements.txt changes.

`.ci/readers` beside the checkout, or TOKENMILL_READERS_VENV. pip's cache serves a rebuild on the same
machine; the first build downloads ~3 GB (torch with its CUDA libraries).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"


def venv_dir() -> Path:
    return Path(os.environ.get("TOKENMILL_READERS_VENV") or HERE.parents[1] / ".ci" / "readers")


def readers_python() -> Path:
    """The readers' interpreter, the environment built first if needed. Raises RuntimeError (with pip's last
    lines) when it cannot be built."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    stamp = venv / "tokenmill-requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"pip install -r {REQUIREMENTS} failed: {done.stderr.strip()[-600:]}")
    stamp.write_text(wanted)
    return python
