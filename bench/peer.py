"""The peer as its maintainers ship it: datatrove's FineWeb pipeline, installed in its own virtualenv, run end to
end on a crawl. Used by bench/compare_peer.py (speed) and bench/parity_datatrove.py (what each run keeps).

Peer: datatrove WarcReader -> URLFilter -> Trafilatura(favour_precision) -> LanguageFilter(en, 0.65) ->
GopherRepetition -> GopherQuality -> C4Quality(no terminal-punctuation rule) -> FineWebQuality -> JSONL, on
LocalPipelineExecutor with one task per WARC file and 2 workers; then FineWeb's four MinHash stages
(signatures, buckets, clustering, filter, with datatrove's examples/fineweb.py settings) on the filtered
output, each a LocalPipelineExecutor with 2 workers. `pip install "datatrove[processing]"` brings trafilatura
1.11. Two things would reach the network at run time and are pointed at local copies instead: its language
filter's lid.176.bin (the same packaged lid.176.ftz we use) and the URL filter's public-suffix list
(tldextract's bundled snapshot). Its TokensCounter is left out (it would download the GPT-2 tokenizer). With
`removed`, every filter also writes what it drops (datatrove's exclusion writers, with the filter's reason) to
OUT/removed/<filter>/; the speed comparison runs without them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = r'''
import json, sys, time
crawl, out, ftz, logs, removed = sys.argv[1:6]
import datatrove.utils.lid as lid
lid.cached_asset_path_or_download = lambda *a, **k: ftz  # the same packaged model, no download
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter, LanguageFilter, URLFilter)
from datatrove.pipeline.readers import JsonlReader, WarcReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.hashing import HashConfig
import glob


def excluded(name):
  return JsonlWriter(f"{out}/removed/{name}") if removed == "removed" else None


def main():
  tasks = len(glob.glob(crawl + "/*.warc.gz"))
  filtered, minhash = out + "/filtered", out + "/minhash"
  pipeline = [
    WarcReader(crawl, glob_pattern="*.warc.gz"),
    URLFilter(exclusion_writer=excluded("url")),
    Trafilatura(favour_precision=True),
    LanguageFilter(languages=["en"], language_threshold=0.65, exclusion_writer=excluded("language")),
    GopherRepetitionFilter(exclusion_writer=excluded("gopher_repetition")),
    GopherQualityFilter(exclusion_writer=excluded("gopher_quality")),
    C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=excluded("c4")),
    FineWebQualityFilter(exclusion_writer=excluded("fineweb")),
    JsonlWriter(filtered),
  ]
  start = time.perf_counter()
  LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=2, logging_dir=logs + "/filter").run()
  filters_s = time.perf_counter() - start
  # FineWeb's MinHash stages (datatrove examples/fineweb.py): 64-bit hashes, 14 buckets x 8, 5-grams; signatures
  # and the final filter in as many tasks as the filtering wrote files, one task per bucket, one clustering task.
  config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
  stages = [
    ([JsonlReader(filtered), MinhashDedupSignature(output_folder=minhash + "/signatures", config=config)], tasks),
    ([MinhashDedupBuckets(input_folder=minhash + "/signatures", output_folder=minhash + "/buckets",
                          config=MinhashConfig(hash_config=config.hash_config))], config.num_buckets),
    ([MinhashDedupCluster(input_folder=minhash + "/buckets", output_folder=minhash + "/remove_ids", config=config)],
     1),
    ([JsonlReader(filtered), MinhashDedupFilter(input_folder=minhash + "/remove_ids"), JsonlWriter(out + "/deduped")],
     tasks),
  ]
  for i, (steps, n) in enumerate(stages, 1):
    LocalPipelineExecutor(pipeline=steps, tasks=n, workers=2, logging_dir=f"{logs}/minhash{i}").run()
  print(json.dumps({"filters_s": filters_s, "minhash_s": time.perf_counter() - start - filters_s}))


if __name__ == "__main__":  # the executor starts worker processes that import this file
  main()
'''


def ensure_peer(venv: Path, version: str, trafilatura: str | None = None) -> Path:
    """The peer's interpreter, installing datatrove `version` with its processing extras on first use; with
    `trafilatura` (a version), that trafilatura release in place of the one datatrove's extras bring."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # spaCy for its English word splitting; the WARC reader's and writer's extras; lxml_html_clean, without
        # which its trafilatura cannot import and every page silently becomes a 1-second timeout.
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"datatrove[processing]=={version}", "spacy",
                        "lxml_html_clean", "faust-cchardet", "python-magic", "warcio", "orjson"], check=True)
        if trafilatura:
            # datatrove 0.10.1's extras ask for trafilatura < 2, so pip refuses both in one resolve: installed
            # over it (pip warns of the conflict; datatrove's extractor calls trafilatura.extract, which 2.x keeps).
            subprocess.run([str(python), "-m", "pip", "install", "-q", f"trafilatura=={trafilatura}"], check=True)
    return python


def our_trafilatura() -> str:
    """The trafilatura release tokenmill pins (pyproject.toml), for running the peer on the same extractor."""
    import re

    pins = re.findall(r'"trafilatura==([^"]+)"', (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    if len(pins) != 1:
        raise SystemExit("bench/peer.py: pyproject.toml does not pin one trafilatura release")
    return pins[0]


def run_peer(python: Path, crawl: Path, out: Path, removed: bool = False) -> dict[str, float]:
    """Run the peer end to end on `crawl` into `out` (filtered/, deduped/, removed/ with `removed`); returns
    its {"filters_s", "minhash_s"}. Earlier output in `out` is deleted first: datatrove skips the tasks its
    logging dir marks complete, so a kept directory's last run would be reused."""
    from classifiers.language import packaged_lid_model

    logs = out.with_name(out.name + "-logs")
    for stale in (out, logs):
        shutil.rmtree(stale, ignore_errors=True)
    env = dict(os.environ, TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="")  # tldextract's bundled suffix list, offline
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "peer.py")
        script.write_text(SCRIPT)
        done = subprocess.run([str(python), str(script), str(crawl), str(out), packaged_lid_model(), str(logs),
                               "removed" if removed else ""], check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])
