"""`tokenmill report`: one self-contained HTML file (inline SVG and CSS, no scripts, no network) with the
funnel, histograms of language score, quality score and token counts, the topic mix, near dedup's rounds and
component sizes, and a few sampled dropped documents per reason."""

from __future__ import annotations

import html

import numpy as np

from console.safe import shown
from outputs.ledger_figures import Histogram, ledger_figures, part_batches, part_rows
from outputs.reading import open_run
from outputs.run_files import FIX_AND_RERUN, near_rounds_line, read_json, run_failure
from schemas.records import REASON_CONTAMINATED, STAGES

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left}
.num{text-align:right}.doc{background:#f7f7f9;border-left:3px solid #c55;padding:.5rem .8rem;margin:.5rem 0;
font-size:.85rem}.doc .meta{color:#666}.grid{display:flex;flex-wrap:wrap;gap:1.5rem}svg text{font-size:11px}
.failed{background:#fdecea;border-left:3px solid #c00;padding:.5rem .8rem}
"""


# Width of one character of the charts' 11px labels, generous (a wide sans-serif glyph is ~6.5 px): labels get
# the room their text needs, never cut or clipped.
CHAR_PX = 7.0


def _h(value: object, lines: bool = False) -> str:
    """Record data in the page: HTML-escaped, and its control and bidi characters shown as escapes (a U+202E in
    a URL would reorder the line it is on, as on a terminal)."""
    return html.escape(shown(value, lines=lines))


def _bar_chart(title: str, labels: list[str], values: list[float], color: str = "#4a7bd0", bars_px: int = 340) -> str:
    if not values:
        return f"<p>{_h(title)}: no data</p>"
    labels = [shown(label) for label in labels]  # record data (reasons, topics): control characters shown
    row = 22
    left = int(max(len(str(label)) for label in labels) * CHAR_PX) + 12
    width = left + bars_px + int(len(f"{max(values):,.0f}") * CHAR_PX) + 12
    height = row * len(values) + 30
    peak = max(values) or 1
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        w = bars_px * value / peak
        y = 20 + i * row
        bars.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{_h(label)}</text>'
                    f'<rect class="bar" x="{left}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{color}"/>'
                    f'<text x="{left + w + 4:.1f}" y="{y + 14}">{value:,.0f}</text>')
    return (f'<figure><svg class="chart" role="img" aria-label="{_h(title)}" width="{width}" '
            f'height="{height}"><text x="0" y="12" font-weight="bold">{_h(title)}</text>{"".join(bars)}'
            f"</svg></figure>")


def _ticks(peak: int, count: int = 4) -> list[int]:
    """Round tick values from 0 to at least `peak`: 0, step, 2 step, ... with step 1, 2 or 5 x 10^k."""
    raw = max(1.0, peak / count)
    magnitude = 10 ** int(np.floor(np.log10(raw)))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [int(step * i) for i in range(int(np.ceil(peak / step)) + 1)]


def _histogram(title: str, histogram: Histogram, color: str = "#3a9d6e", x_label: str = "") -> str:
    """Bars of document counts over the histogram's equal ranges of the values (of log10 of them with its `log`),
    with a y axis of counts and an x axis of values."""
    if histogram.result() is None:
        return f"<p>{_h(title)}: no data</p>"
    counts, edges = histogram.result()
    bins, log = histogram.bins, histogram.log
    ticks = _ticks(int(counts.max()))
    top = ticks[-1] or 1
    left = int(len(f"{top:,}") * CHAR_PX) + 16
    width, height, bottom, plot_top = left + 480, 250, 44, 44
    plot_h, bar_w = height - bottom - plot_top, 480 / bins
    base = height - bottom
    parts = [f'<line x1="{left}" y1="{plot_top}" x2="{left}" y2="{base}" stroke="#888"/>',
             f'<line x1="{left}" y1="{base}" x2="{left + 480}" y2="{base}" stroke="#888"/>']
    for t in ticks:
        y = base - plot_h * t / top
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#888"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:,}</text>')
    for i, c in enumerate(counts):
        h = plot_h * c / top
        lo_i, hi_i = (10 ** edges[i], 10 ** edges[i + 1]) if log else (edges[i], edges[i + 1])
        parts.append(f'<rect class="bar" x="{left + i * bar_w:.1f}" y="{base - h:.1f}" width="{bar_w - 1:.1f}" '
                     f'height="{h:.1f}" fill="{color}"><title>{lo_i:.3g}..{hi_i:.3g}: {c} documents</title></rect>')
    for i in range(0, bins + 1, max(1, bins // 4)):
        x, value = left + i * bar_w, (10 ** edges[i] if log else edges[i])
        anchor = "start" if i == 0 else ("end" if i == bins else "middle")
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#888"/>'
                     f'<text x="{x:.1f}" y="{base + 16}" text-anchor="{anchor}">{shown}</text>')
    axis = f"{x_label}{' (log scale)' if log else ''}"
    parts.append(f'<text x="{left + 240}" y="{height - 6}" text-anchor="middle">{_h(axis)}</text>'
                 f'<text x="0" y="{plot_top - 10}">documents</text>')
    return (f'<figure><svg class="chart" role="img" aria-label="{_h(title)}" width="{width}" '
            f'height="{height}"><text x="0" y="12" font-weight="bold">{_h(title)}</text>{"".join(parts)}'
            f"</svg></figure>")


def _near_dedup_section(near: dict | None) -> str:
    """stats.json's near_dedup story: the rounds that stepped (edges, nodes not yet in a star), whether the graph
    converged, and the LSH components by size."""
    if not near:
        return ""
    rounds = near.get("rounds", [])
    chart = _bar_chart("Edges entering each near-dedup round", [f"round {r['round']}" for r in rounds],
                       [r["edges"] for r in rounds], "#6a8caf")
    comps = near.get("components", {})
    sizes = _bar_chart("LSH components by size (members)", list(comps), list(comps.values()), "#af6a8c")
    rows = "".join(f"<tr><td class=num>{r['round']}</td><td class=num>{r['edges']:,}</td>"
                   f"<td class=num>{r['not_in_star']:,}</td></tr>" for r in rounds)
    snapshots = ", ".join(f"{_h(k)} ({v} files)" for k, v in near.get("snapshots", {}).items())
    return f"""<h2>Near dedup</h2>
<p>Scope <b>{_h(near.get('scope', 'all'))}</b>{': ' + snapshots if snapshots else ''}.
{_h(near_rounds_line(near))};
{near.get('final_edges', 0):,} edges in the final stars.</p>
<div class="grid">{chart}{sizes}</div>
<table><tr><th>round</th><th>edges</th><th>nodes not yet in a star</th></tr>{rows}</table>"""


def _decontamination_section(decon: dict | None, flagged: int) -> str:
    """stats.json's decontamination: per benchmark file what it gave the index, the items found in the crawl
    and the documents that matched them (dropped or flagged), with the items found most often."""
    if not decon:
        return ""
    def top(s: dict) -> str:
        return ", ".join(f"item {t['item']} ({t['documents']})" for t in s["top_items"]) or "-"

    rows = "".join(
        f"<tr><td>{_h(s['path'])}<br><small>sha256 {s['sha256'][:12]}</small></td>"
        f"<td class=num>{s['items']:,}</td><td class=num>{s['indexed']:,}</td><td class=num>{s['too_short']:,}</td>"
        f"<td class=num>{s['ngrams']:,}</td><td class=num>{s['items_found']:,}</td>"
        f"<td class=num>{s['documents']:,}</td>"
        f"<td>{_h(top(s))}</td></tr>"
        for s in decon["sources"])
    index = decon.get("index", {})
    action = "dropped" if decon["action"] == "drop" else "flagged (kept)"
    return f"""<h2>Decontamination</h2>
<p>Documents sharing at least {decon['min_matches']} word {decon['ngram']}-gram(s) with a benchmark item are
<b>{action}</b>{f' ({flagged:,} flagged documents reached the shards)' if decon['action'] == 'flag' else ''};
items of fewer than {decon['min_item_words']} words are left out. Index: {index.get('ngrams', 0):,} n-grams of
{index.get('items', 0):,} items, {index.get('bytes', 0) / 2**20:.1f} MiB per worker process.</p>
<table><tr><th>benchmark file</th><th>items</th><th>indexed</th><th>too short</th><th>n-grams</th>
<th>items found</th><th>documents {action}</th><th>items found most (documents)</th></tr>{rows}</table>"""


def build_report(run_dir: str, samples_per_reason: int = 3, seed: int = 1) -> str:
    manifest = open_run(run_dir)
    stats = read_json(f"{run_dir.rstrip('/')}/stats.json")
    # Read a batch at a time, never whole (outputs/ledger_figures.py): a snapshot's ledger has ~3 B rows.
    figures = ledger_figures(part_batches(run_dir, manifest["ledger"]), samples_per_reason, seed,
                             read_rows=part_rows(run_dir, manifest["ledger"]))
    stages = [s for s in STAGES if s in stats["stages"]]
    funnel = _bar_chart("Documents remaining after each stage", ["input records"] + stages,
                        [stats["records"]] + [stats["stages"][s]["out"] for s in stages])
    top = list(figures.samples)
    dropped_chart = _bar_chart("Dropped documents by reason (top 15)", top, [figures.dropped_by_reason[k] for k in top],
                               "#c55")
    lang = _histogram("Language score (every document with text)", figures.language,
                      x_label="lid.176 score of the top language")
    quality_chart = (_histogram("Quality score", figures.quality, color="#8a5cc2", x_label="quality_score")
                     if figures.quality_entries else "")
    tokens = _histogram("Tokens per kept document", figures.tokens, color="#d08a2e", x_label="tokens")
    topic_mix = stats.get("kept_by_topic") or {}
    topic_chart = _bar_chart("Kept tokens by topic", list(topic_mix), [v["tokens"] for v in topic_mix.values()],
                             "#2e8bd0") if topic_mix else ""
    lang_mix = sorted((stats.get("kept_by_language") or {}).items(), key=lambda kv: -kv[1]["tokens"])[:12]
    lang_chart = _bar_chart("Kept tokens by language (top 12)", [k for k, _ in lang_mix],
                            [v["tokens"] for _, v in lang_mix], "#2e8bd0")
    funnel_rows = "".join(
        f"<tr><td>{s}</td><td class=num>{stats['stages'][s]['in']:,}</td><td class=num>{stats['stages'][s]['out']:,}"
        f"</td><td>{_h(', '.join(f'{r} {n}' for r, n in stats['stages'][s]['dropped'].items()))}</td></tr>"
        for s in stages
    )
    samples = []
    for key, picked in figures.samples.items():
        reason = key.split(": ", 1)[-1]
        shows_detail = reason == REASON_CONTAMINATED  # the detail quotes the matched passage
        docs = "".join(
            f'<div class="doc"><div class="meta">{_h(r["url"] or "")} &middot; {_h(r["doc_id"])}'
            f' &middot; score {r["score"] if r["score"] is not None else "-"}</div>'
            f'{_h(((r["detail"] if shows_detail else r["text"]) or "(text not sampled)")[:700], lines=True)}'
            '</div>'
            for r in picked
        )
        samples.append(f"<h3>{_h(key)}</h3>{docs}")
    title = f"tokenmill run report: {_h(run_dir)}"
    # A failed run's outputs hold what could be read before it failed: said first, as `stats` says it.
    failure = run_failure(run_dir)
    unread = stats.get("read", {}).get("file_errors", [])
    warning = (f'<p class="failed"><b>This run ended in an error and is not finished:</b> {_h(failure)}; '
               f"{FIX_AND_RERUN}.</p>" if failure is not None else "")
    if unread:
        warning += ("<p><b>Files not read to the end:</b></p><ul>" + "".join(
            f"<li>{_h(e.get('file', ''))} at byte {e.get('offset', 0):,}: {_h(e.get('error', ''))}</li>"
            for e in unread[:20]) + (f"<li>and {len(unread) - 20:,} more</li>" if len(unread) > 20 else "") + "</ul>")
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{CSS}</style></head><body>
<h1>{title}</h1>
{warning}
<p>{stats['records']:,} input records &rarr; {stats['kept']:,} kept documents, {stats['tokens']:,} tokens
({_h(manifest['tokenizer']['name'])}); recipe <b>{_h(manifest['recipe']['name'])}</b>
(sha256 {manifest['recipe_sha256'][:12]}); {len(manifest['shards'])} shards.</p>
<h2>Funnel</h2><div class="grid">{funnel}{dropped_chart}</div>
<table><tr><th>stage</th><th>in</th><th>out</th><th>dropped by reason</th></tr>{funnel_rows}</table>
<h2>Distributions</h2><div class="grid">{lang}{quality_chart}{tokens}</div>
<h2>Mix</h2><div class="grid">{lang_chart}{topic_chart}</div>
{_decontamination_section(stats.get("decontamination"), sum(stats.get("flagged", {}).values()))}
{_near_dedup_section(stats.get("near_dedup"))}
<h2>Sampled dropped documents</h2>{''.join(samples)}
</body></html>
"""
