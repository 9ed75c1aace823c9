"""`tokenmill release` and `verify` (of a release or a mixture)."""

from __future__ import annotations

import sys

from console.safe import ArgumentParser, say


def cmd_release(argv: list[str]) -> int:
    from outputs.reading import OutputDirError
    from release.publish import ReleaseError, release

    ap = ArgumentParser(prog="tokenmill release")
    ap.add_argument("run")
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--to", required=True)
    args = ap.parse_args(argv)
    try:
        manifest = release(args.run, args.name, args.version, args.to)
    except (ReleaseError, OutputDirError) as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    index = manifest.get("dedup_index")
    carried = (f", dedup index {sum(f['bytes'] for f in index['files']):,} bytes "
               f"({index['bytes_per_document']:,.0f} per document)") if index else ", no dedup index"
    say(f"released {args.name} {args.version}: {len(manifest['files'])} shards, "
        f"{manifest['totals']['tokens']:,} tokens{carried} -> {args.to}")
    return 0


def cmd_verify(argv: list[str]) -> int:
    from mixing.folder import mixture_manifest, verify_mixture
    from release.publish import ReleaseError, verify

    ap = ArgumentParser(prog="tokenmill verify")
    ap.add_argument("release", help="a release or a mixture folder")
    args = ap.parse_args(argv)
    manifest = mixture_manifest(args.release)
    if manifest is not None:
        problems = verify_mixture(args.release, manifest)
        intact = ("the plan matches its checksums; every source is as mixed (manifest sha256) with the shard "
                  "files the plan reads")
    else:
        try:
            problems = verify(args.release)
        except ReleaseError as exc:
            say(f"tokenmill: {exc}", file=sys.stderr)
            return 2
        intact = "every file matches its checksum, size, rows and schema"
    for p in problems:
        say(f"MISMATCH {p}")
    if problems:
        return 1
    say(f"{args.release}: {intact}")
    return 0
