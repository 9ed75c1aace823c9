"""The training stacks' readers in a virtual environment of their own (requirements.txt says why not in
tokenmill's): built on first use, once per machine, and rebuilt when requirements.txt changes.

`.ci/readers` beside the checkout, or TOKENMILL_READERS_VENV. pip's cache serves a rebuild on the same
machine; the first build downloads ~3 GB (torch with its CUDA libraries) and took 170 s here. `.ci/run`
starts that build in the background before the tests (`python3 tests/readers/venv.py`), so the download
overlaps the test suite's CPU work; a lock file makes the test that needs it wait for that build rather than
start another.
"""

from __future__ import annotations

import fcntl
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
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when its process dies
        return _built(venv)


def _built(venv: Path) -> Path:
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


if __name__ == "__main__":  # .ci/run: build it in the background while the tests start
    print(readers_python())
