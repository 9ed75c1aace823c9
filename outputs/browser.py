"""Headless Chromium for looking at a report as a person would (tests and bench/report_screenshot.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not path:
        raise FileNotFoundError("no Chromium on PATH (Debian: apt-get install chromium)")
    return path


def render(html_path: str, *, screenshot: str | None = None, size: str = "1200,2400") -> tuple[str, list[str]]:
    """(DOM after load, console messages) of a local HTML file; also a PNG when `screenshot` is given."""
    with tempfile.TemporaryDirectory() as profile:
        args = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}"]
        dom = subprocess.run([*args, "--dump-dom", f"file://{html_path}"], capture_output=True, text=True,
                             timeout=120, check=True)
        if screenshot:
            subprocess.run([*args, f"--screenshot={screenshot}", f"file://{html_path}"], capture_output=True,
                           timeout=120, check=True)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    return dom.stdout, console
