"""`tokenmill stats`, `inspect`, `diff`, `report`, `decode`: reading a finished run back."""

from __future__ import annotations

import sys

from console.safe import ArgumentParser, say, shown


def sample_count(value: str) -> int:
    """argparse type of --sample: a whole number, 0 or more (-1 once showed all but one of the matches)."""
    import argparse

    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"'{value}' is not a count: give 0 or more (0 prints only the count)")
    return n


def sample_flags(ap: ArgumentParser, what: str) -> None:
    """--sample and --seed, as inspect and diff take them."""
    ap.add_argument("--sample", type=sample_count, default=5, metavar="N",
                    help=f"how many {what} to show, chosen by a seeded hash of their ids (default %(default)s; "
                    "0 prints only the count; to see every one give a number at least that large)")
    ap.add_argument("--seed", type=int, default=1,
                    help="which documents --sample picks: the same seed picks the same documents on every call "
                    "and machine, another seed another sample of the same matches (default %(default)s)")


def _open(root: str, parts: bool = True):
    """The run's manifest (checked: open_run, or open_manifest without `parts`), or None after one line."""
    from outputs.reading import OutputDirError, open_manifest, open_run

    try:
        return open_run(root) if parts else open_manifest(root)
    except OutputDirError as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return None


def stats_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill stats",
        description="The funnel of a finished run: per stage the documents in, out and dropped by reason, the "
        "seconds spent,\nfile and internal errors, and what was kept by language and topic. Reads the run's "
        "manifest.json and\nstats.json only (or a mixture folder's manifest: its sources and composition); "
        "writes nothing.",
        epilog="example:\n  tokenmill stats demo_out/out\n  tokenmill stats demo_out/out --json | "
        "python -m json.tool")
    ap.add_argument("run", help="a run's output folder or a mixture folder (local, gs://, s3://)")
    ap.add_argument("--json", action="store_true", help="print stats.json (or the mixture's manifest) as one "
                    "JSON object instead of the table")
    return ap


def cmd_stats(argv: list[str]) -> int:
    import json

    from outputs.run_files import read_json

    args = stats_parser().parse_args(argv)
    from mixing.folder import mixture_manifest

    manifest = mixture_manifest(args.run)
    if manifest is not None:
        from tokenmill_cli.mixtures import print_mixture

        if args.json:
            print(json.dumps(manifest, sort_keys=True))
        else:
            print_mixture(args.run, manifest)
        return 0
    # Only the run's two summary files: the parts are `inspect`'s business, and a snapshot's run has ~10^5.
    if _open(args.run, parts=False) is None:
        return 2
    from storage.files import exists

    if not exists(f"{args.run.rstrip('/')}/stats.json"):
        say(f"tokenmill: {args.run}: partial output, no stats.json", file=sys.stderr)
        return 2
    stats = read_json(f"{args.run.rstrip('/')}/stats.json")
    from outputs.run_files import FIX_AND_RERUN, run_failure

    failure = run_failure(args.run)
    if args.json:  # `failed`: the error line that failed the run (_failed.json), so a script can tell
        print(json.dumps({**stats, **({"failed": failure} if failure is not None else {})}, sort_keys=True))
        return 0
    from console.numbers import count, run_summary, secs, table
    from schemas.records import STAGES

    say(run_summary(stats))
    if failure is not None:
        say(f"this run ended in an error and is not finished: {failure}; {FIX_AND_RERUN}")
    seconds = stats.get("stage_seconds", {})
    rows = []
    for stage in [st for st in STAGES if st in stats["stages"]]:
        s = stats["stages"][stage]
        dropped = sum(s["dropped"].values())
        reasons = ", ".join(f"{r} {count(n)}" for r, n in sorted(s["dropped"].items(), key=lambda kv: -kv[1]))
        rows.append([stage, count(s["in"]), count(s["out"]), count(dropped), secs(seconds.get(stage, 0)), reasons])
    for line in table(["stage", "in", "out", "dropped", "worker time", "reasons"], rows,
                      [False, True, True, True, True, False]):
        say(line)
    for line in timing_lines(stats):
        say(line)
    skipped = stats["read"]["skipped_record_types"]
    if skipped:
        say("non-content records skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    for err in stats["read"]["file_errors"]:
        say(f"file error: {err['file']} at byte {err['offset']}: {err['error']}")
    errors = stats.get("internal_errors") or {}
    if errors:  # records a step raised on (pipelines/isolation.py): bugs or hostile records, not text judgements
        total = sum(e["records"] for e in errors.values())
        say(f"internal errors: {total:,} records made a step raise: " + ", ".join(
            f"{stage} {e['records']:,} (e.g. {e['example']})" for stage, e in errors.items())
            + f"; tokenmill inspect {args.run} --reason internal_error")
    for kind in ("language", "topic"):
        mix = stats.get(f"kept_by_{kind}") or {}
        if mix:
            top = sorted(mix.items(), key=lambda kv: -kv[1]["tokens"])[:12]
            say(f"kept by {kind}: " + ", ".join(f"{k} {count(v['documents'])} docs / {count(v['tokens'])} tok"
                                                for k, v in top))
    for rel in stats.get("dedup_against", []):
        say(f"against release {rel['name']} {rel['version']} ({rel['indexed_documents']:,} documents): "
            f"{rel['exact_copies']:,} exact and {rel['near_copies']:,} near copies dropped")
    decon = stats.get("decontamination")
    if decon:
        for s in decon["sources"]:
            say(f"decontamination ({decon['action']}): {s['path']}: {s['items_found']:,} of {s['items']:,} items "
                f"found, {s['documents']:,} documents")
    near = stats.get("near_dedup")
    if near and "rounds_used" in near:  # runs before 2026-12-06 recorded only the configured rounds
        from outputs.run_files import near_rounds_line

        edges = " ".join(f"{r['edges']:,}" for r in near["rounds"])
        comps = ", ".join(f"{k}: {v:,}" for k, v in near["components"].items())
        say(f"near dedup ({near['scope']}): {near_rounds_line(near)}; edges per round {edges or '-'}; "
            f"components by size {comps or '-'}")
    return 0


def timing_lines(stats: dict) -> list[str]:
    """Where the run's wall time went (stats.json `timing`, outputs/timing.py): each phase as measured, near
    dedup's rounds on one row, the remainder as `other`; then the worker seconds, which are not wall time."""
    from console.numbers import secs, table
    from outputs.timing import OTHER, PHASES, phase_label

    timing = stats.get("timing")
    if not timing:  # a run of a tokenmill before the phases were measured
        return []
    rows, rounds = [], []
    for p in timing["phases"]:
        if p["phase"].startswith("near_dedup_round_"):
            if not rounds:
                rows.append(None)  # the rounds' row, filled in below, where the first round is
            rounds.append(p["seconds"])
        else:
            rows.append([phase_label(p["phase"]), secs(p["seconds"]), PHASES.get(p["phase"], "")])
    if rounds:
        # The job graph holds every round it unrolled (max_rounds, or none for a small run); those after
        # convergence run on an empty graph.
        used = (stats.get("near_dedup") or {}).get("rounds_used")
        needed = f" ({used} needed to converge)" if used is not None and used < len(rounds) else ""
        rows[rows.index(None)] = ["near dedup: rounds", secs(sum(rounds)), f"{len(rounds)} rounds run{needed}: "
                                  + " ".join(f"{r:.1f}" for r in rounds) + " s"]
    rows.append(["other", secs(timing["other_seconds"]), OTHER])
    lines = [f"time: {secs(timing['wall_seconds'])} wall from the command's start, in phases as measured:"]
    lines += ["  " + line for line in table(["phase", "wall", "what"], rows, [False, True, False])]
    setup = ", ".join(f"{k} {secs(v)}" for k, v in timing.get("setup_seconds", {}).items() if v)
    lines.append("worker time is summed over the worker processes, not wall time: the stages' column (extract: "
                 "trafilatura's CPU time and decoding)" + (f"; setting up steps: {setup}" if setup else ""))
    return lines


def _excerpt(text: str | None, width: int = 600) -> str:
    if not text:
        return "(text not kept: the ledger keeps a seeded sample of dropped texts)"
    text = " ".join(text.split())
    return text[:width] + (" ..." if len(text) > width else "")


def _offending(row: dict, text: str | None) -> str:
    """The part of the text a rule points at, where one can be named: the repeated line or paragraph, the
    lines without end punctuation, the URL."""
    from collections import Counter

    from schemas.records import REASON_CONTAMINATED

    reason = row.get("reason") or ""
    if reason.startswith("url_"):
        return f"URL: {row['url']}"
    if reason == REASON_CONTAMINATED:  # detail: '<benchmark file> item <i>: "<the page's passage>"'
        passage = row.get("detail", "").partition(': "')[2].removesuffix('"')
        return f"matched passage: {passage}" if passage else ""
    if not text:
        return ""
    if reason in ("dup_line_frac", "dup_line_char_frac", "char_dup_ratio", "dup_para_frac", "dup_para_char_frac"):
        parts = text.split("\n\n") if reason.startswith("dup_para") else [ln for ln in text.split("\n") if ln.strip()]
        line, count = Counter(parts).most_common(1)[0]
        return f"repeated {count}x: {_excerpt(line, 200)}"
    if reason == "line_punct_ratio":
        bare = [ln for ln in text.split("\n") if ln.strip() and not ln.rstrip().endswith((".", "!", "?", '"', "'"))]
        return f"{len(bare)} lines without end punctuation, e.g.: {_excerpt(bare[0], 200)}" if bare else ""
    if reason.startswith(("top_", "duplicated_")):
        words = text.split()
        n = int(reason.split("_")[1])
        grams = Counter(" ".join(words[i : i + n]) for i in range(max(0, len(words) - n + 1)))
        if grams:
            gram, count = grams.most_common(1)[0]
            return f"most frequent {n}-gram ({count}x): {gram}"
    return ""


def _print_doc(row: dict, text: str | None) -> None:
    decision = "KEPT" if row["kept"] else f"DROPPED at {row['stage']}: {row['reason']}"
    score = "" if row.get("score") is None else f" (score {row['score']:.4g})"
    say(f"- {row['doc_id']}  {row['url']}")
    say(f"  {decision}{score}  language {row.get('language')} {row.get('language_score') or 0:.2f}"
        + (f"  topic {row['topic']}" if row.get("topic") else "")
        + (f"  detail: {row['detail']}" if row.get("detail") else ""))
    scores = {s["name"]: s["value"] for s in row.get("scores") or []}
    if scores:
        say("  signals: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(scores.items())))
    if offending := _offending(row, text):
        say(f"  >>> {offending}")
    say(f"  {_excerpt(text)}")


def _shard_text(manifest: dict):
    """A function from a shard row's tokens to its text, decoded offline with the tokenizer the run or release
    names (built once), the appended end-of-text token left out."""
    from tokenization.tokenizers import Tokenizer

    tok = manifest["tokenizer"]
    tokenizer = Tokenizer(tok["name"], tok["append_eos"])
    return lambda tokens: tokenizer.decode(tokens[:-1] if tok["append_eos"] else tokens)


def decode_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill decode",
        description="Token ids back to text, offline: ids as arguments or on standard input (spaces, commas or a "
        "JSON list),\ndecoded with a named tokenizer or the one a run or release names in its manifest.json. "
        "The text is printed\nexactly, except on a terminal, where its control characters are shown escaped. "
        "Writes nothing.",
        epilog="examples:\n  tokenmill decode --tokenizer cl100k_base 9906 1917\n"
        "  echo '[9906, 1917]' | tokenmill decode --from demo_out/out")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--tokenizer", metavar="NAME",
                        help="cl100k_base, o200k_base or a tokenizer.json path")
    source.add_argument("--from", dest="origin", metavar="RUN_OR_RELEASE",
                        help="use the tokenizer that run or release names in its manifest")
    ap.add_argument("ids", nargs="*", help="token ids (none given: read from standard input)")
    return ap


def cmd_decode(argv: list[str]) -> int:
    """Token ids back to text, offline: ids as arguments or on standard input (spaces, commas or a JSON list).
    The text is printed exactly, except on a terminal, where its control characters are shown escaped."""
    import json
    import re

    from tokenization.tokenizers import Tokenizer

    args = decode_parser().parse_args(argv)
    name = args.tokenizer
    if args.origin:
        from storage.files import exists, join, read_bytes

        path = join(args.origin, "manifest.json")
        if not exists(path):
            say(f"tokenmill: {args.origin}: no manifest.json (not a run or a release)", file=sys.stderr)
            return 2
        name = json.loads(read_bytes(path))["tokenizer"]["name"]
    raw = " ".join(args.ids) if args.ids else sys.stdin.read()
    # Ids separated by spaces, commas or newlines; a JSON list ([9906, 1917]) works too. Anything else is
    # refused: a regex that took the digits out of '1.5' or 'abc' decoded ids nobody gave, or nothing, with exit 0.
    words = [w for w in re.split(r"[\s,\[\]]+", raw) if w]
    bad = next((w for w in words if not w.isascii() or not w.isdigit()), None)
    if bad is not None:
        say(f"tokenmill: not a token id: '{bad}' (ids are whole numbers from 0, separated by spaces or commas)",
            file=sys.stderr)
        return 2
    try:
        tokenizer = Tokenizer(name, append_eos=False)
        ids = [int(w) for w in words]
        outside = next((i for i in ids if i >= tokenizer.vocab_size), None)
        if outside is not None:
            say(f"tokenmill: token id {outside} is not in {name} (its ids run from 0 to {tokenizer.vocab_size - 1})",
                file=sys.stderr)
            return 2
        text = tokenizer.decode(ids)
    except (ValueError, KeyError, OverflowError) as exc:
        say(f"tokenmill: cannot decode with {name}: {exc}", file=sys.stderr)
        return 2
    # The text exactly, into a pipe or file; on a terminal its control characters shown, not obeyed.
    print(shown(text, lines=True) if sys.stdout.isatty() else text)
    return 0


def inspect_parser() -> ArgumentParser:
    import textwrap

    from schemas.records import DROP_REASONS, REASON_INTERNAL_ERROR, REASONS, STAGE_KEPT, STAGES

    reasons = "\n".join(textwrap.fill(f"{stage}: {', '.join(rs)}", 100, initial_indent="  ", subsequent_indent="    ")
                        for stage, rs in DROP_REASONS.items() if rs)
    ap = ArgumentParser(
        prog="tokenmill inspect",
        description="Show documents of a finished run from its ledger: a seeded sample of the kept or dropped "
        "ones,\nnarrowed by stage, reason, language, topic or score, each with its decision, signals, the "
        "passage a rule\npoints at and an excerpt of its text; or one document's whole history (--id). Reads "
        "the run's ledger/ and\nshards/; writes nothing. The count of matches goes to standard error, the "
        "documents to standard output.",
        epilog="examples:\n  tokenmill inspect demo_out/out --dropped --stage filters --sample 10\n"
        "  tokenmill inspect demo_out/out --reason near_duplicate --json\n"
        "  tokenmill inspect demo_out/out --id 0f3a...   (a doc_id from the ledger or another inspect)\n\n"
        f"reasons by stage (and {REASON_INTERNAL_ERROR} at any stage: a step raised on the record):\n{reasons}")
    ap.add_argument("run", help="a run's output folder (local, gs://, s3://)")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--dropped", action="store_true", help="only dropped documents")
    which.add_argument("--kept", action="store_true", help="only kept documents")
    which.add_argument("--id", default=None, metavar="DOC_ID",
                       help="one document's whole history: its ledger row and, if kept, its shard row and text")
    ap.add_argument("--stage", choices=[*STAGES, STAGE_KEPT], metavar="STAGE",
                    help="only documents this stage dropped (or 'kept'): one of %(choices)s")
    ap.add_argument("--reason", choices=REASONS, metavar="REASON",
                    help="only documents dropped for this reason (the list below; an unknown one is refused)")
    ap.add_argument("--lang", metavar="CODE", help="only documents identified as this language (e.g. en, de)")
    ap.add_argument("--topic", help="only documents of this topic label (with a topic classifier)")
    ap.add_argument("--min-score", type=float, metavar="X",
                    help="only documents whose deciding score is at least X (the ledger's score column)")
    ap.add_argument("--max-score", type=float, metavar="X", help="only documents whose deciding score is at most X")
    sample_flags(ap, "matching documents")
    ap.add_argument("--json", action="store_true", help="one JSON object per document (its ledger row and text)")
    return ap


def _asks_for_nothing(args) -> str | None:
    """Why a combination of --kept/--dropped, --stage and --reason can match no row of any run, or None: such a
    filter printed '0 matching documents' as if the run had none."""
    from schemas.records import DROP_REASONS, REASON_CONTAMINATED, REASON_INTERNAL_ERROR, STAGE_KEPT

    if args.kept and args.stage not in (None, STAGE_KEPT):
        return f"--kept with --stage {args.stage} matches nothing: a kept document's stage is '{STAGE_KEPT}'"
    if args.dropped and args.stage == STAGE_KEPT:
        return (f"--dropped with --stage {STAGE_KEPT} matches nothing: a dropped document names the stage that "
                "dropped it")
    kept = args.kept or args.stage == STAGE_KEPT
    if kept and args.reason not in (None, REASON_CONTAMINATED):
        return (f"a kept document's reason is empty or '{REASON_CONTAMINATED}' (flagged by decontamination): "
                f"--reason {args.reason} matches no kept document")
    if args.stage not in (None, STAGE_KEPT) and args.reason not in (None, REASON_INTERNAL_ERROR) and (
            args.reason not in DROP_REASONS.get(args.stage, ())):
        at = [stage for stage, reasons in DROP_REASONS.items() if args.reason in reasons]
        return f"stage {args.stage} never gives reason {args.reason} (it is given at {', '.join(at)})"
    return None


def cmd_inspect(argv: list[str]) -> int:
    import json

    from outputs.reading import doc_filter, history, read_shards, sample_ledger

    args = inspect_parser().parse_args(argv)
    manifest = _open(args.run)
    if manifest is None:
        return 2
    if args.id:
        rows = list(history(args.run, manifest, args.id))
        if not rows:
            whole = "" if len(args.id) == 32 else " (--id takes a whole id: 32 hex digits, as the ledger has it)"
            say(f"tokenmill: no document {args.id} in {args.run}{whole}", file=sys.stderr)
            return 1
        shard = next((r for r in rows if r["kind"] == "shard"), None)
        kept_text = _shard_text(manifest)(shard["tokens"]) if shard is not None else None
        for row in rows:
            if args.json:
                print(json.dumps({k: v for k, v in row.items() if k != "tokens"}
                                 | ({"text": kept_text} if row["kind"] == "shard" else {}), default=str))
            elif row["kind"] == "ledger":
                _print_doc(row, kept_text if row["kept"] else row.get("text"))
            else:
                say(f"  shard row: {row['token_count']} tokens, cluster_size {row['cluster_size']}")
        return 0
    nothing = _asks_for_nothing(args)
    if nothing:
        say(f"tokenmill: {nothing}", file=sys.stderr)
        return 2
    expr = doc_filter(dropped=True if args.dropped else (False if args.kept else None), stage=args.stage,
                      reason=args.reason, lang=args.lang, topic=args.topic, score_min=args.min_score,
                      score_max=args.max_score)
    matching, rows = sample_ledger(args.run, manifest, args.sample, args.seed, filter_=expr)
    texts: dict[str, str] = {}
    kept_ids = [r["doc_id"] for r in rows if r["kept"]]
    if kept_ids:
        import pyarrow.compute as pc

        text_of = _shard_text(manifest)
        shard_rows = read_shards(args.run, manifest, ["doc_id", "tokens"], pc.field("doc_id").isin(kept_ids))
        for r in shard_rows.to_pylist():
            texts[r["doc_id"]] = text_of(r["tokens"])
    say(f"{matching:,} matching documents, showing {len(rows)} (seed {args.seed})", file=sys.stderr)
    for row in rows:
        text = texts.get(row["doc_id"], row.get("text"))
        if args.json:
            print(json.dumps({**row, "text": text}, default=str))
        else:
            _print_doc(row, text)
    return 0


def diff_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill diff",
        description="What one finished run kept and the other dropped, both ways: how many, the other run's "
        "stage and reason\nfor them, and a seeded sample of those documents as the other run's ledger "
        "recorded them. The runs must\nhave read the same crawl files (ids follow the files' names). Reads both "
        "runs' ledger/; writes nothing.",
        epilog="example:\n  tokenmill run --input 'crawl/*.warc.gz' --output a --config default\n"
        "  tokenmill run --input 'crawl/*.warc.gz' --output b --config fineweb\n  tokenmill diff a b --sample 3")
    ap.add_argument("run_a", help="a run's output folder")
    ap.add_argument("run_b", help="another run's output folder, of the same inputs")
    sample_flags(ap, "documents of each side")
    return ap


def cmd_diff(argv: list[str]) -> int:
    """What one run kept and the other dropped. The two ledgers meet as Arrow tables of four columns (doc id,
    kept, stage, reason), joined by Arrow; whole rows are read only for the sampled documents."""
    import pyarrow.compute as pc

    from outputs.reading import ledger_rows, read_ledger, sample_ids

    args = diff_parser().parse_args(argv)
    ma, mb = _open(args.run_a), _open(args.run_b)
    if ma is None or mb is None:
        return 2
    from schemas.records import doc_id_scheme

    if doc_id_scheme(ma) != doc_id_scheme(mb):  # the same record has another id in each: nothing would meet
        say(f"tokenmill: {args.run_a} has doc ids {doc_id_scheme(ma)}, {args.run_b} {doc_id_scheme(mb)}: "
            "their records cannot be matched; run both with one tokenmill", file=sys.stderr)
        return 2
    cols = ["doc_id", "kept", "stage", "reason"]
    a, b = read_ledger(args.run_a, ma, cols), read_ledger(args.run_b, mb, cols)
    joined = a.join(b, "doc_id", join_type="inner", left_suffix="_a", right_suffix="_b")
    both = pc.sum(pc.and_(joined["kept_a"], joined["kept_b"])).as_py() or 0
    say(f"{a.num_rows:,} / {b.num_rows:,} ledger rows; kept by both {both:,}")
    if a.num_rows and b.num_rows and not joined.num_rows:
        say("tokenmill: warning: the two runs share no record (a file's name, and so its records' ids, is its "
            "path below the folder all of a run's inputs share: other inputs, other names)", file=sys.stderr)
    del a, b
    sides = ((f"kept by {args.run_a} only", "a", "b", args.run_b, mb),
             (f"kept by {args.run_b} only", "b", "a", args.run_a, ma))
    for title, mine, other, other_run, other_manifest in sides:
        only = joined.filter(pc.and_(joined[f"kept_{mine}"], pc.invert(joined[f"kept_{other}"])))
        counts = only.group_by([f"stage_{other}", f"reason_{other}"]).aggregate([("doc_id", "count")]).to_pylist()
        reasons = sorted(((f"{c[f'stage_{other}']}/{c[f'reason_{other}']}", c["doc_id_count"]) for c in counts),
                         key=lambda kv: (-kv[1], kv[0]))
        print()
        why = f" (the other run's reasons: {', '.join(f'{k} {v}' for k, v in reasons)})" if reasons else ""
        say(f"{title}: {only.num_rows:,}{why}")
        picked = sample_ids(only.column("doc_id").to_pylist(), args.sample, args.seed)
        for row in ledger_rows(other_run, other_manifest, picked):
            _print_doc(row, row.get("text"))
    return 0


def report_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill report",
        description="Write one self-contained HTML file about a finished run (the funnel, charts of its "
        "signals, sampled drops\nwith their reasons) or about a mixture folder (its sources and composition). "
        "Reads the run's manifest,\nstats and ledger; writes only the file -o names.",
        epilog="example:\n  tokenmill report demo_out/out -o report.html")
    ap.add_argument("run", help="a run's output folder or a mixture folder")
    ap.add_argument("-o", "--output", required=True, metavar="FILE.html",
                    help="the HTML file to write (any FileSystems path; replaced if it exists)")
    return ap


def cmd_report(argv: list[str]) -> int:
    from outputs.report import build_report

    args = report_parser().parse_args(argv)
    from mixing.folder import mixture_manifest
    from storage.files import write_bytes

    manifest = mixture_manifest(args.run)
    if manifest is not None:
        from outputs.mixture_report import build_mixture_report

        write_bytes(args.output, build_mixture_report(args.run, manifest).encode("utf-8"))
        say(f"report written to {args.output}")
        return 0
    if _open(args.run) is None:
        return 2
    write_bytes(args.output, build_report(args.run).encode("utf-8"))
    say(f"report written to {args.output}")
    return 0
