"""Read an export folder back with the training stack's own reader, in the readers' environment
(tests/readers/requirements.txt), and print what it read as JSON for tests/test_exports.py to compare.

    python read_back.py megatron DIR   {"pairs": {prefix: {"dtype", "documents", "document_indices_ok",
                                         "tokens": [[ids of each document]]}}, "blend": [[weight, prefix]]}
    python read_back.py hf DIR [CONFIG ...]   {"configs": {name: {"rows", "features", "input_ids", "doc_id"}},
                                               "card": the card's YAML header as the Hub library parses it}

    python read_back.py mds DIR [STREAM ...]  {"streams": {name: {"samples", "tokens", "dtype", "doc_id",
                                               "language", "language_score"}}, "yaml": {label: samples}}

    python read_back.py litdata DIR [DATASET ...]  {"datasets": {name: {"items", "tokens", ...}}, "combined": [...],
                                                    "combined_drawn": items drawn by CombinedStreamingDataset}

Nothing of tokenmill is imported here: only the readers see the files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def megatron(folder: Path) -> dict:
    import numpy as np
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from megatron.core.datasets.utils import get_blend_from_list

    line = (folder / "blend.megatron.txt").read_text().split()
    prefixes, weights = get_blend_from_list(line)
    pairs = {}
    for prefix in prefixes:
        ds = IndexedDataset(prefix)
        pairs[prefix] = {
            "dtype": str(np.dtype(ds.index.dtype)),
            "documents": len(ds.document_indices) - 1,
            "document_indices_ok": bool((ds.document_indices == np.arange(len(ds) + 1)).all()),
            "tokens": [ds[i].tolist() for i in range(len(ds))],
        }
    return {"pairs": pairs, "blend": [[w, p] for w, p in zip(weights, prefixes, strict=True)]}


def hf(folder: Path, configs: list[str]) -> dict:
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    out = {}
    for name in configs or [None]:
        ds = load_dataset(str(folder), name, split="train")
        out[name or "default"] = {"rows": ds.num_rows, "features": {k: str(v) for k, v in ds.features.items()},
                                  "input_ids": [list(x) for x in ds["input_ids"]],
                                  "doc_id": list(ds["doc_id"])}
    card = DatasetCard.load(folder / "README.md")
    result = {"configs": out, "card": card.data.to_dict()}
    if "interleave_datasets" in card.text:  # a mixture's card: run its snippet as a user would paste it
        code = card.text.split("```python", 1)[1].split("```", 1)[0].replace("PATH/TO/THIS/FOLDER", str(folder))
        scope: dict = {}
        exec(code, scope)  # noqa: S102 - the card tokenmill wrote, in a test
        result["interleaved_rows"] = scope["ds"].num_rows
    return result


def mds(folder: Path, streams: list[str]) -> dict:
    import yaml
    from streaming import Stream, StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    out = {}
    for name in streams or [""]:
        ds = StreamingDataset(local=str(folder / name), shuffle=False, batch_size=1)
        samples = [ds[i] for i in range(len(ds))]
        out[name or "default"] = {
            "samples": len(ds), "tokens": [s["tokens"].tolist() for s in samples],
            "dtype": str(samples[0]["tokens"].dtype), "doc_id": [s["doc_id"] for s in samples],
            "language": [s["language"] for s in samples],
            "language_score": [float(s["language_score"]) for s in samples]}
    config = yaml.safe_load((folder / "llm-foundry.yaml").read_text())
    listed = config["train_loader"]["dataset"]["streams"]
    both = StreamingDataset(streams=[Stream(**s) for s in listed.values()], shuffle=False, batch_size=1)
    return {"streams": out, "yaml": {k: dict(v) for k, v in listed.items()}, "yaml_samples": len(both)}


def litdata(folder: Path, datasets: list[str]) -> dict:
    from litdata import CombinedStreamingDataset, StreamingDataset

    out = {}
    for name in datasets or [""]:
        ds = StreamingDataset(str(folder / name) if name else str(folder))
        items = [ds[i] for i in range(len(ds))]
        out[name or "default"] = {
            "items": len(ds), "tokens": [i["input_ids"].tolist() for i in items],
            "dtype": str(items[0]["input_ids"].dtype), "doc_id": [i["doc_id"] for i in items],
            "language": [i["language"] for i in items], "language_score": [float(i["language_score"]) for i in items]}
    listed = json.loads((folder / "combined.json").read_text())
    both = CombinedStreamingDataset([StreamingDataset(d["input_dir"]) for d in listed],
                                    weights=[d["weight"] for d in listed], iterate_over_all=False)
    drawn = sum(1 for _ in zip(range(50), both, strict=False))
    return {"datasets": out, "combined": listed, "combined_drawn": drawn}


if __name__ == "__main__":
    fmt, folder = sys.argv[1], Path(sys.argv[2])
    readers = {"megatron": lambda: megatron(folder), "hf": lambda: hf(folder, sys.argv[3:]),
               "mds": lambda: mds(folder, sys.argv[3:]), "litdata": lambda: litdata(folder, sys.argv[3:])}
    result = readers[fmt]()
    json.dump(result, sys.stdout)
