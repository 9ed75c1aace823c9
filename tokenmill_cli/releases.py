"""`tokenmill release` and `verify` (of a release or a mixture)."""

from __future__ import annotations

import sys

from console.safe import ArgumentParser, say


def release_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill release",
        description="Copy a finished run's shards (and its dedup index) into an immutable release: each copy "
        "checked against\nthe run's sha256, a manifest.json with every file's checksum, size and rows, and a "
        "README.md dataset card.\nA run that kept no document is refused. Releasing the same run as the same "
        "name and version into its\nown folder again only verifies it. Reads the run; writes --to (new or empty; "
        "read-only files when local).",
        epilog="example:\n  tokenmill release demo_out/out --name web --version 1.0.0 --to releases/web-1.0.0")
    ap.add_argument("run", help="a finished run's output folder")
    ap.add_argument("--name", required=True, help="the dataset's name (in the manifest, the card and a "
                    "mixture's source label)")
    ap.add_argument("--version", required=True, help="the release's version, e.g. 1.0.0")
    ap.add_argument("--to", required=True, metavar="DIR", help="the release folder to write (new or empty; "
                    "local, gs://, s3://)")
    return ap


def cmd_release(argv: list[str]) -> int:
    from outputs.reading import OutputDirError
    from release.publish import ReleaseError, release
    from storage.files import exists, join

    args = release_parser().parse_args(argv)
    already = exists(join(args.to.rstrip("/"), "manifest.json"))  # release() then verifies it and copies nothing
    try:
        manifest = release(args.run, args.name, args.version, args.to)
    except (ReleaseError, OutputDirError) as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    index = manifest.get("dedup_index")
    carried = (f", dedup index {sum(f['bytes'] for f in index['files']):,} bytes "
               f"({index['bytes_per_document']:,.0f} per document)") if index else ", no dedup index"
    if already:
        say(f"{args.to} already holds release {args.name} {args.version} of this run (verified), nothing copied")
        return 0
    say(f"released {args.name} {args.version}: {len(manifest['files'])} shards, "
        f"{manifest['totals']['tokens']:,} tokens{carried} -> {args.to}")
    return 0


def verify_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill verify",
        description="Check a release: every file against its checksum, size, rows and schema; a mixture "
        "folder: its plan\nagainst its checksums and each source as it was mixed; or an export folder (tokenmill "
        "export): every\nfile against its checksum and size. Prints one MISMATCH line per "
        "problem and exits 1\nif there is any, 0 if all is intact. Reads only; writes nothing.",
        epilog="example:\n  tokenmill verify releases/web-1.0.0")
    ap.add_argument("release", help="a release, a mixture or an export folder")
    return ap


def cmd_verify(argv: list[str]) -> int:
    from exports.folder import export_manifest, verify_export
    from mixing.folder import mixture_manifest, verify_mixture
    from release.publish import ReleaseError, verify

    args = verify_parser().parse_args(argv)
    manifest = mixture_manifest(args.release)
    exported = None if manifest is not None else export_manifest(args.release)
    if exported is not None:
        problems = verify_export(args.release, exported)
        intact = f"every file of the {exported['format']} export matches its checksum and size"
    elif manifest is not None:
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
