"""The Python side of a cluster: an EXTERNAL pool of Beam SDK workers, run from tokenmill's built wheel installed
in a virtual environment of its own (no checkout on its path, as on a cluster's worker machine), each worker
booted by `tokenmill-worker-boot` (harness/boot.py) so it gets the run's options."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from clusters.cache import CHECKOUT, locked
from clusters.procs import Service, free_port


@functools.cache
def built_wheel() -> Path:
    """tokenmill's wheel, built from this checkout once per process (a wheel in .ci/dist may be older than the
    code under test)."""
    with locked("wheel") as root:
        dist = root / "dist"
        for old in dist.glob("tokenmill-*.whl"):
            old.unlink()
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(dist), str(CHECKOUT)], check=True, capture_output=True)
        return sorted(dist.glob("tokenmill-*.whl"))[-1]


def _content_digest(wheel: Path) -> str:
    """The wheel's files and their bytes, not the zip's timestamps: the same code gives the same environment."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            digest.update(name.encode() + b"\0" + z.read(name))
    return digest.hexdigest()[:16]


def worker_venv(wheel: Path) -> Path:
    """A virtual environment holding `wheel` with the aws extra, made once per wheel's content. Dependencies come
    from .ci/worker-deps (the wheels .ci/run downloads for workers) when it is there, else from the index."""
    deps = sorted(p.name for p in (CHECKOUT / ".ci" / "worker-deps").glob("*.whl"))
    key = hashlib.sha256(f"{_content_digest(wheel)}\n{chr(10).join(deps)}".encode()).hexdigest()[:16]
    with locked("venv") as root:
        venv = root / f"workers-{key}"
        if (venv / ".installed").exists():
            return venv
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        deps = CHECKOUT / ".ci" / "worker-deps"
        if deps.is_dir() and any(deps.iterdir()):
            pip += ["--only-binary=:all:", "--no-index", "--find-links", str(deps)]
        else:  # from the index: Beam 2.62's crcmod, dill and docopt are source distributions (no compiler needed)
            pip += ["--prefer-binary"]
        subprocess.run([*pip, f"{wheel}[aws]"], check=True)
        (venv / ".installed").write_text(f"{wheel.name}\n")
        return venv


class WorkerPool(Service):
    """`worker_pool_main` from the worker environment, started in `work` with a clean environment: PATH has the
    venv first and PYTHONPATH is unset, so nothing of the checkout is importable."""

    def __init__(self, venv: Path, work: Path) -> None:
        self.port = free_port()
        self.venv = venv
        # No AWS_* either: the workers must get the store's settings from the run's options (harness/boot.py).
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("AWS_")}
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        work.mkdir(parents=True, exist_ok=True)
        super().__init__("SDK worker pool", [
            str(venv / "bin" / "python"), "-m", "apache_beam.runners.worker.worker_pool_main",
            f"--service_port={self.port}", f"--container_executable={venv / 'bin' / 'tokenmill-worker-boot'}"],
            work / "worker-pool.log", env=env, cwd=work)
        try:
            self.wait_for_port(self.port)
        except BaseException:
            self.stop()
            raise

    @property
    def endpoint(self) -> str:
        """What --environment_config takes with --environment_type=EXTERNAL."""
        return f"localhost:{self.port}"


def start_worker_pool(work: Path) -> WorkerPool:
    return WorkerPool(worker_venv(built_wheel()), work)
