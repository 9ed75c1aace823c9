"""`tokenmill mix`: blend releases and runs by weight into a mixture folder a training run reads."""

from __future__ import annotations

import sys

from console.safe import ArgumentParser, say


def mix_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill mix",
        description="Plan a mixture of releases (or finished runs) by weight: how many tokens of each, in which "
        "shuffled\norder, over how many epochs, for a training run to read (release/reader.py). The folder holds "
        "the plan,\nnot a copy of the shards. Reads the spec and its sources' manifests and shards; writes --to "
        "(new or\nempty). The same spec into its own folder again only verifies what is there.",
        epilog="example (a mix.toml: README.md, \"From a crawl to a training loop\"):\n"
        "  tokenmill mix mix.toml --to mixes/m1")
    ap.add_argument("spec", help="MIX.toml (any FileSystems path)")
    ap.add_argument("--to", required=True, metavar="DIR", help="the mixture folder to write (new or empty)")
    return ap


def cmd_mix(argv: list[str]) -> int:
    from mixing.build import mix
    from mixing.spec import SpecError, load_spec

    args = mix_parser().parse_args(argv)
    from mixing.folder import mixture_manifest

    try:
        spec = load_spec(args.spec)
        say(f"mixing {spec.name}: {spec.total_tokens:,} tokens from {len(spec.sources)} source(s), seed {spec.seed}")
        # A mixture already there is returned by mix only when it is this one, verified (a retried script).
        there = mixture_manifest(args.to) is not None
        manifest = mix(spec, args.to, log=say)
    except SpecError as exc:
        say(f"tokenmill: {args.spec}: {exc}", file=sys.stderr)
        return 2
    print_sources(manifest)
    for w in manifest["warnings"]:
        say(f"tokenmill: warning: {w}", file=sys.stderr)
    plan = manifest["plan"]
    what = f"{args.to} already holds this mixture (verified), nothing written" if there else f"wrote {args.to}"
    say(f"{what}: {plan['units']:,} units in {plan['windows']:,} window(s), {plan['entries']:,} document "
        f"entries, {plan['tokens']:,} tokens planned")
    return 0


def print_sources(manifest: dict) -> None:
    """One line per source: weight, tokens planned and share, epochs, copies (`mix` and `stats`)."""
    for s in manifest["sources"]:
        copies = ", ".join(f"{k}x {v:,}" for k, v in sorted(s["copies"].items(), key=lambda kv: int(kv[0])))
        say(f"  {s['label']}: weight {s['weight']:g} -> {s['planned_tokens']:,} tokens ({s['share']:.2%}), "
            f"{s['epochs']:.2f} epochs of {s['pool_tokens']:,}; documents by copies per epoch: {copies}")


def print_mixture(path: str, manifest: dict) -> None:
    """`tokenmill stats MIX_DIR`: the mixture's sources, composition and warnings."""
    comp = manifest["composition"]
    say(f"mixture {manifest['name']} ({path}): {manifest['plan']['tokens']:,} tokens, seed {manifest['seed']}, "
        f"{len(manifest['sources'])} source(s), tokenizer {manifest['tokenizer']['name']}")
    print_sources(manifest)
    for kind in ("language", "topic"):
        top = sorted(comp[f"by_{kind}"].items(), key=lambda kv: -kv[1])[:12]
        say(f"by {kind}: " + ", ".join(f"{k or '(none)'} {v:,}" for k, v in top))
    say("by epoch: " + ", ".join(f"{e}: {t:,}" for e, t in enumerate(comp["by_epoch"])))
    for w in manifest["warnings"]:
        say(f"warning: {w}")
