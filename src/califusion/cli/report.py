"""A self-contained HTML report of a job: loss and accuracy curves, rounds and contributors.

The plot is drawn by matplotlib as inline SVG, so the file needs nothing else to open.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from califusion.protocol import JobInfo, RoundInfo

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left;font-family:monospace}
.meta{color:#555}
"""


def _plot_svg(rounds: list[RoundInfo]) -> str:
    import matplotlib  # noqa: PLC0415 - heavy import, only when a report is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    closed = [r for r in rounds if r.metrics is not None]
    xs = [r.number for r in closed]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, values in (
        ("local train loss", [r.metrics.train_loss if r.metrics else None for r in closed]),
        ("validation loss", [r.metrics.loss if r.metrics else None for r in closed]),
    ):
        pts = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if pts:
            ax_loss.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=label)
    ax_loss.set_xlabel("round")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    acc = [
        (x, r.metrics.accuracy)
        for x, r in zip(xs, closed, strict=True)
        if r.metrics and r.metrics.accuracy is not None
    ]
    if acc:
        ax_acc.plot([p[0] for p in acc], [100 * p[1] for p in acc], marker=".", color="tab:green")
    ax_acc.set_xlabel("round")
    ax_acc.set_ylabel("validation accuracy (%)")
    ax_acc.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def render_report(job: JobInfo, rounds: list[RoundInfo]) -> str:
    esc = html.escape
    member_rows = "".join(
        f"<tr><td class=l>{esc(m.trainer)}</td><td>{m.state.value}</td>"
        f"<td>{m.declared_samples}</td><td>{m.rounds_contributed}</td></tr>"
        for m in job.members
    )
    round_rows = []
    for r in rounds:
        m = r.metrics
        cells = [
            str(r.number),
            str(r.attempt),
            r.state.value,
            str(len(r.contributors)),
            f"{m.train_loss:.4f}" if m and m.train_loss is not None else "-",
            f"{m.loss:.4f}" if m and m.loss is not None else "-",
            f"{m.accuracy:.2%}" if m and m.accuracy is not None else "-",
        ]
        round_rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(job.spec.title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{esc(job.spec.title)}</h1>
<p class="meta">{esc(job.job_id)} · {job.state.value} · {job.rounds_completed}/{job.spec.rounds}
rounds · model {esc(job.spec.model.architecture.kind)} · strategy
{esc(job.spec.aggregation.name)} · publisher <code>{esc(job.publisher)}</code></p>
<p>{esc(job.spec.description)}</p>
{_plot_svg(rounds)}
<h2>Contributors</h2>
<table><tr><th class=l>trainer</th><th>state</th><th>samples</th><th>rounds</th></tr>
{member_rows}</table>
<h2>Rounds</h2>
<table><tr><th>round</th><th>attempt</th><th>state</th><th>updates</th><th>train loss</th>
<th>val loss</th><th>val acc</th></tr>{"".join(round_rows)}</table>
</body></html>
"""


def write_report(path: Path, job: JobInfo, rounds: list[RoundInfo]) -> Path:
    path.write_text(render_report(job, rounds), encoding="utf-8")
    return path
