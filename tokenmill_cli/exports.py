"""`tokenmill export`: a release or a mixture in a training stack's own format (exports/)."""

from __future__ import annotations

import re
import sys

from console.safe import ArgumentParser, say, shown

# The line a user pastes into their training config, per format and source kind ({dir} is the export folder).
READER_LINES = {
    ("megatron", "release"): "Megatron-LM: --data-args-path {dir}/blend.megatron.txt   NeMo: model.data.data_prefix "
                             "from {dir}/blend.nemo.yaml",
    ("hf", "release"): 'datasets.load_dataset("{dir}", split="train")',
    ("hf", "mixture"): 'datasets.load_dataset("{dir}", SOURCE, split="train") per source, drawn by weight with '
                       "interleave_datasets: {dir}/README.md has the lines",
    ("mds", "release"): 'streaming.StreamingDataset(local="{dir}")   LLM-Foundry: the streams in '
                        "{dir}/llm-foundry.yaml",
    ("mds", "mixture"): "LLM-Foundry: train_loader.dataset.streams from {dir}/llm-foundry.yaml (a stream per "
                        "source, with its proportion)",
    ("litdata", "release"): 'litdata.StreamingDataset("{dir}")',
    ("litdata", "mixture"): "litdata.CombinedStreamingDataset over {dir}/combined.json's input_dir and weight",
}
READER_LINES[("megatron", "mixture")] = READER_LINES[("megatron", "release")]


def export_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill export",
        description="Write a release or a mixture in a training stack's own format, one format per call:\n"
        "  megatron  Megatron-Core indexed datasets (.bin + .idx, one document per sequence), one pair per "
        "release\n            shard, and the blend as Megatron's --data-path list (blend.megatron.txt) and "
        "NeMo's\n            data_prefix (blend.nemo.yaml)\n"
        "  hf        a Hugging Face dataset folder: data/*.parquet (input_ids + metadata) and a dataset card\n"
        "  mds       MosaicML Streaming shards (tokens as LLM-Foundry reads them, doc_id, language, scores), one "
        "stream\n            per mixture source, and LLM-Foundry's streams (llm-foundry.yaml)\n"
        "  litdata   LitData's optimized chunks (input_ids, doc_id, language, scores), one dataset per mixture "
        "source,\n            and their weights for CombinedStreamingDataset (combined.json)\n"
        "The source must pass `tokenmill verify` first. Streams a row group at a time, several shards at once; a "
        "stopped\nexport started again with the same arguments writes only what is missing. Writes --to (new or "
        "empty) with a\nmanifest.json of every file's sha256, which `tokenmill verify DIR` checks.",
        epilog="examples:\n  tokenmill export releases/web-1.0.0 --format megatron --to exports/web-megatron\n"
        "  tokenmill export mixes/m1 --format hf --to exports/m1-hf --license odc-by")
    ap.add_argument("source", help="a release folder (tokenmill release) or a mixture folder (tokenmill mix)")
    ap.add_argument("--format", required=True, choices=["megatron", "hf", "mds", "litdata"],
                    help="the format to write: %(choices)s")
    ap.add_argument("--to", required=True, metavar="DIR", help="the folder to write (new or empty; local, gs://, "
                    "s3://)")
    ap.add_argument("--dtype", default="auto", choices=["auto", "uint16", "int32"],
                    help="megatron: the token dtype, one of %(choices)s (default auto: what Megatron picks for the "
                    "vocabulary, uint16 below 65,500 ids, else int32); a vocabulary that does not fit is refused")
    ap.add_argument("--license", default=None, metavar="ID", help="hf: the license id for the card's header (a Hub "
                    "license id, e.g. odc-by; default: other, with a note on the crawl's terms)")
    return ap


def cmd_export(argv: list[str]) -> int:
    from exports.run import export
    from exports.sources import ExportError

    args = export_parser().parse_args(argv)
    if args.license is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.+-]{0,63}", args.license):
        say(f"tokenmill: --license {shown(args.license)}: not a license id (lower-case letters, digits, '.', '+', "
            "'-'; the Hub's list: huggingface.co/docs/hub/repositories-licenses)", file=sys.stderr)
        return 2
    try:
        manifest = export(args.source, args.format, args.to, dtype=args.dtype, license_id=args.license,
                          log=say)
    except ExportError as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    totals = manifest["totals"]
    data = [f for f in manifest["files"] if "documents" in f]
    say(f"exported {manifest['source']['kind']} {manifest['source']['path']} as {args.format}: "
        f"{totals['documents']:,} documents, {totals['tokens']:,} tokens, {len(data)} data files ({manifest['dtype']} "
        f"ids) -> {args.to}")
    kind = manifest["source"]["kind"]
    say("read it with: " + READER_LINES[(args.format, kind)].format(dir=args.to.rstrip("/")))
    return 0
