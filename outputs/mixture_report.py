"""`tokenmill report MIX_DIR`: the composition of a mixture (self-contained HTML, as the run report): tokens by
source against the weights asked, by language, topic and epoch, the copies the repeat tables made, and the
warnings of the mix. Everything comes from the mixture's manifest."""

from __future__ import annotations

from outputs.report import CSS, _bar_chart, _h

EPOCH_BARS = 12  # epochs beyond this are summed into one bar


def _label(value: str) -> str:
    return value or "(none)"


def build_mixture_report(mix_dir: str, m: dict) -> str:
    """The report of the mixture at `mix_dir`, whose manifest is `m`."""
    comp = m["composition"]
    planned = m["plan"]["tokens"]
    by_source = _bar_chart("Planned tokens by source", list(comp["by_source"]), list(comp["by_source"].values()))
    # manifest.json keeps its keys sorted by name: the charts order by tokens, the tables by number
    langs = sorted(comp["by_language"].items(), key=lambda kv: -kv[1])[:EPOCH_BARS]
    by_language = _bar_chart(f"Tokens by language (top {EPOCH_BARS})", [_label(k) for k, _ in langs],
                             [v for _, v in langs], "#2e8bd0")
    topics = sorted(comp["by_topic"].items(), key=lambda kv: -kv[1])
    by_topic = _bar_chart("Tokens by topic", [_label(k) for k, _ in topics], [v for _, v in topics], "#8a5cc2")
    epochs = comp["by_epoch"]
    shown = epochs[:EPOCH_BARS] + ([sum(epochs[EPOCH_BARS:])] if len(epochs) > EPOCH_BARS else [])
    labels = [f"epoch {e}" for e in range(min(len(epochs), EPOCH_BARS))] + (
        [f"epochs {EPOCH_BARS}-{len(epochs) - 1}"] if len(epochs) > EPOCH_BARS else [])
    by_epoch = _bar_chart("Tokens by epoch (each source's n-th pass over its documents)", labels, shown, "#d08a2e")
    rows = []
    for s in m["sources"]:
        copies = ", ".join(f"{k}&times; {v:,}" for k, v in sorted(s["copies"].items(), key=lambda kv: int(kv[0])))
        table = sorted((s["repeat_by_cluster_size"] or {}).items(), key=lambda kv: int(kv[0]))
        repeat = ", ".join(f"{k}: {v}" for k, v in table) or "-"
        origin = f"release {s['name']} {s['version']}" if s["kind"] == "release" else "run"
        warn = ' style="color:#b00;font-weight:bold"' if s["epochs"] > m["warn_epochs"] else ""
        rows.append(
            f"<tr><td><b>{_h(s['label'])}</b><br><small>{_h(origin)}: {_h(s['path'])}<br>"
            f"manifest sha256 {s['manifest_sha256'][:12]}</small></td>"
            f"<td>{_h(s['where'] or '-')}</td><td class=num>{s['weight']:g}</td>"
            f"<td class=num>{s['share']:.2%}</td><td class=num>{s['documents']:,}</td>"
            f"<td class=num>{s['pool_tokens']:,}</td><td class=num>{s['planned_tokens']:,}</td>"
            f"<td class=num{warn}>{s['epochs']:.2f}</td><td>{copies}<br><small>table {_h(repeat)}</small>"
            "</td></tr>")
    warnings = "".join(f"<li>{_h(w)}</li>" for w in m["warnings"])
    warnings = (f'<h2>Warnings</h2><ul style="color:#b00">{warnings}</ul>' if warnings else
                f"<p>No source repeats more than warn_epochs = {m['warn_epochs']:g} epochs.</p>")
    title = f"tokenmill mixture report: {_h(m['name'])}"
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{CSS}</style></head><body>
<h1>{title}</h1>
<p>{_h(mix_dir)}: {m['total_tokens']:,} tokens asked, {planned:,} planned
({_h(m['tokenizer']['name'])}); seed {m['seed']}; {m['plan']['units']:,} units in
{m['plan']['windows']:,} shuffle window(s) of ~{m['window_tokens']:,} tokens;
{m['plan']['entries']:,} document entries; mixed {_h(m['created'])}.</p>
{warnings}
<h2>Sources</h2>
<table><tr><th>source</th><th>where</th><th>weight</th><th>share planned</th><th>documents</th>
<th>tokens per epoch</th><th>tokens planned</th><th>epochs</th><th>documents by copies per epoch</th></tr>
{''.join(rows)}</table>
<h2>Composition</h2><div class="grid">{by_source}{by_language}{by_topic}{by_epoch}</div>
</body></html>
"""
