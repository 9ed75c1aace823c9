"""The job graph a run submits, for N input files: the Runner API proto's size in bytes.

    python bench/graph_size.py [--files 100000] [--config fineweb]

Dataflow refuses a job graph over 10 MB; the issue's goal is <= 1 MB for 100,000 paths. The paths are named
as Common Crawl names them (s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/.../warc/CC-MAIN-...warc.gz).
Nothing is read or run: the pipeline is only built, as `run_pipeline.run` builds it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.quiet import drop_import_warning  # noqa: E402

drop_import_warning()

from outputs.run_files import write_input_list  # noqa: E402
from pipelines.build import build_pipeline  # noqa: E402
from run_pipeline import local_runner, make_pipeline  # noqa: E402
from schemas.recipe import load_recipe  # noqa: E402
from tokenization.tokenizers import describe_tokenizer  # noqa: E402


def cc_paths(n: int) -> list[str]:
    """n paths shaped like one Common Crawl snapshot's WARC files (~140 characters each)."""
    return [f"s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/1707947{i // 100:05d}.{i % 100:02d}/warc/"
            f"CC-MAIN-20240220211055-20240221001055-{i:05d}.warc.gz" for i in range(n)]


def graph_bytes(files: int, config: str) -> int:
    recipe = load_recipe(config)
    with tempfile.TemporaryDirectory() as tmp:
        inputs_file = f"{tmp}/inputs.txt"
        write_input_list(inputs_file, cc_paths(files))
        # The runner is built as a run builds it: Beam 2.62 knows no runner named 'FnApiRunner' (it came with
        # 2.68), so beam.Pipeline(options=['--runner=FnApiRunner']) raised 'Unexpected pipeline runner'.
        p = make_pipeline(local_runner([]))
        build_pipeline(p, inputs_file=inputs_file, output=f"{tmp}/out", recipe=recipe,
                       tokenizer_info=describe_tokenizer(recipe.tokenizer.name, recipe.tokenizer.append_eos))
        return len(p.to_runner_api().SerializeToString())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--config", default="fineweb")
    args = ap.parse_args()
    small, large = graph_bytes(10, args.config), graph_bytes(args.files, args.config)
    print(f"recipe {args.config}: job graph {small:,} bytes for 10 input files, {large:,} bytes for "
          f"{args.files:,} ({'within' if large <= 1 << 20 else 'OVER'} the 1 MiB goal)")


if __name__ == "__main__":
    main()
