"""`tokenmill mix`: open the sources (mixing.sources), plan the mixture (mixing.plan), write the mixture
folder (mixing.folder) with its manifest: per source what it gives and how often, the composition, warnings."""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from typing import Any

from mixing.folder import MIXTURE_KIND, mixture_manifest, verify_mixture, write_plan
from mixing.plan import PlanError, SourcePlan, plan_mixture
from mixing.sources import Source, mixture_loader, open_sources, scan_sources
from mixing.spec import MixSpec, SpecError
from outputs.run_files import tokenmill_version
from storage.files import join, write_bytes
from storage.folders import build_folder, holds_files, into_place


def _source_entry(s: Source, plan: SourcePlan, total: int) -> dict[str, Any]:
    m = s.manifest
    return {
        "label": s.label, "path": s.path, "kind": s.kind, "name": m.get("name"), "version": m.get("version"),
        "manifest_sha256": s.manifest_sha256, "weight": s.spec.weight, "where": s.spec.where,
        "repeat_by_cluster_size": {str(k): v for k, v in s.spec.repeat} or None, "files": s.files,
        "documents": plan.documents, "pool_tokens": plan.pool_tokens, "target_tokens": plan.target_tokens,
        "planned_tokens": plan.planned_tokens, "share": plan.planned_tokens / total,
        "epochs": round(plan.epochs, 4), "full_epochs": plan.full_epochs, "tokens_by_epoch": plan.tokens_by_epoch,
        # copies per epoch -> documents; and the tokens the copies beyond the first add per epoch
        "copies": {str(k): v for k, v in plan.copies_histogram.items()},
        "repeated_tokens_per_epoch": plan.pool_tokens - plan.selected_tokens,
        "tokens_by_language": plan.tokens_by_language, "tokens_by_topic": plan.tokens_by_topic,
    }


def mix(spec: MixSpec, target: str, log=print) -> dict[str, Any]:
    """Plan the mixture and write it to `target` (any store; locally built beside it and renamed into place,
    on object storage the manifest is written last). Raises SpecError with one line. When `target` already
    holds this very mixture (same spec, same sources) it is verified and its manifest returned, nothing
    written."""
    target = target.rstrip("/")
    sources = open_sources(spec)
    existing = mixture_manifest(target)
    if existing is not None:  # the same mix again (a retried script) is a checked no-op
        if existing["spec"] != spec.raw or [s["manifest_sha256"] for s in existing["sources"]] != [
                s.manifest_sha256 for s in sources]:
            raise SpecError(f"{target} already holds mixture {existing['name']} of another spec or other sources")
        problems = verify_mixture(target, existing)
        if problems:
            raise SpecError(f"{target}: the mixture there is damaged: {problems[0]}")
        return existing
    if holds_files(target):
        raise SpecError(f"{target} is not empty: a mixture is written into a new folder")
    scans, docs = scan_sources(sources), []
    for s, scan in zip(sources, scans, strict=True):
        docs.append(scan.groups())
        log(f"  {s.label}: {docs[-1].documents:,} documents selected of "
            f"{sum(f['rows'] for f in s.files):,}, {docs[-1].selected_tokens:,} tokens")
    try:
        units, plans = plan_mixture(docs, [s.weight for s in spec.sources], spec.total_tokens, spec.seed,
                                    spec.window_tokens)
    except PlanError as exc:
        s = sources[exc.args[1]]
        raise SpecError(f"sources[{s.index}] ({s.spec.path}): {exc.args[0]}"
                        + (f" (where {s.spec.where!r})" if s.spec.where else "")) from None
    total = sum(p.planned_tokens for p in plans)
    warnings = [f"{s.label} repeats {p.epochs:.2f} epochs, above warn_epochs = {spec.warn_epochs:g}: "
                f"{p.pool_tokens:,} tokens per epoch for a target of {p.target_tokens:,}"
                for s, p in zip(sources, plans, strict=True) if p.epochs > spec.warn_epochs]
    by_epoch = [0] * max(len(p.tokens_by_epoch) for p in plans)  # tokens in each source's e-th pass
    for p in plans:
        for e, t in enumerate(p.tokens_by_epoch):
            by_epoch[e] += t
    build = build_folder(target, "mix")
    try:
        plan_files = write_plan(build, units, mixture_loader(scans))
    except PlanError as exc:
        raise SpecError(f"{target}: {exc.args[0]}") from None
    manifest = {
        "kind": MIXTURE_KIND, "name": spec.name, "seed": spec.seed, "total_tokens": spec.total_tokens,
        "warn_epochs": spec.warn_epochs, "window_tokens": spec.window_tokens, "spec": spec.raw,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "tokenmill_version": tokenmill_version(),
        "tokenizer": sources[0].manifest["tokenizer"],
        "sources": [_source_entry(s, p, total) for s, p in zip(sources, plans, strict=True)],
        "plan": {"files": plan_files, "units": int(len(units.tokens)), "windows": int(units.window.max()) + 1,
                 "entries": sum(p.entries for p in plans), "tokens": total},
        "composition": {
            "by_source": {s.label: p.planned_tokens for s, p in zip(sources, plans, strict=True)},
            # manifest.json is written with sorted keys: an order given here would not survive
            "by_language": dict(sum((Counter(p.tokens_by_language) for p in plans), Counter())),
            "by_topic": dict(sum((Counter(p.tokens_by_topic) for p in plans), Counter())),
            "by_epoch": by_epoch,
        },
        "warnings": warnings,
    }
    write_bytes(join(build, "manifest.json"), json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    into_place(build, target)
    return manifest
