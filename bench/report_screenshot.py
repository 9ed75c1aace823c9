"""Render a run's HTML report in headless Chromium and save a screenshot for humans to look at.

    python bench/report_screenshot.py OUT_DIR [--png report.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from outputs.browser import render  # noqa: E402
from outputs.report import build_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--png", default="report.png")
    args = ap.parse_args()
    html_path = os.path.join(tempfile.mkdtemp(), "report.html")
    Path(html_path).write_text(build_report(args.run), encoding="utf-8")
    dom, console = render(html_path, screenshot=os.path.abspath(args.png))
    charts = dom.count('class="chart"')
    print(f"{charts} charts rendered, {len(console)} console messages; screenshot {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
