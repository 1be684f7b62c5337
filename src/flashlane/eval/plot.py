"""The eval's picture: each configuration's score (with its 95 % interval) against its cost per
1,000 items, the Pareto front drawn and the recommendation marked (``flashlane eval --plot``).

Drawn with matplotlib (the optional extra ``flashlane[plot]``), on a ``Figure`` of its own (no
pyplot state, no display needed). A PNG, an SVG, or a self-contained HTML page: the SVG inline
(nothing fetched: no script, stylesheet or font from the network), each configuration's point an
SVG group with the id ``config-N``, and a table of the configurations with their figures below it.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InputError

if TYPE_CHECKING:
    from .grid import EvalReport

__all__ = ["PLOT_FORMATS", "check_plot_path", "plot_svg", "write_plot"]

PLOT_FORMATS = {".html": "html", ".htm": "html", ".png": "png", ".svg": "svg"}
FIGURE_INCHES = (8.0, 5.0)
PNG_DPI = 150
# No creator/date block: the page is the same for the same report, and names nothing outside it.
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
FRONT_COLOUR, OTHER_COLOUR, PICK_COLOUR = "#d62728", "#7f7f7f", "#2ca02c"


def require_plot_extra() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("flashlane eval --plot needs matplotlib", hint="pip install 'flashlane[plot]'") from None


def check_plot_path(path: str | Path) -> str:
    """The format a plot path asks for; an unknown suffix is a usage error, before any request."""
    fmt = PLOT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"--plot {path}: unknown format", hint="name a .html, .png or .svg file")
    return fmt


def _scale(report: EvalReport) -> float:
    return 1.0 if report.metric == "chrf" else 100.0  # chrF is already 0-100


def _figure(report: EvalReport) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGURE_INCHES)
    ax = fig.add_subplot()
    scale = _scale(report)
    drawn = [(i, r) for i, r in enumerate(report.configs)
             if r["cost_per_1000_items_usd"] is not None and r["metrics"][report.metric]["value"] is not None]
    for i, r in drawn:
        sc = r["metrics"][report.metric]
        x, y = r["cost_per_1000_items_usd"], scale * sc["value"]
        lo, hi = (scale * sc["ci"][0], scale * sc["ci"][1]) if sc["ci"] else (y, y)
        colour = PICK_COLOUR if i == report.recommended else FRONT_COLOUR if r.get("pareto") else OTHER_COLOUR
        bars = ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], fmt="o", color=colour, capsize=3,
                           markersize=8 if i == report.recommended else 6)
        bars.lines[0].set_gid(f"config-{i}")
        for k, artist in enumerate(bars.lines[2]):
            artist.set_gid(f"config-{i}-interval{'' if k == 0 else k}")
        ax.annotate(str(i + 1), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    front = sorted((r["cost_per_1000_items_usd"], scale * r["metrics"][report.metric]["value"])
                   for _, r in drawn if r.get("pareto"))
    if front:
        ax.step([c for c, _ in front], [v for _, v in front], where="post", color=FRONT_COLOUR, alpha=0.5,
                label="Pareto front")
    if report.recommended is not None:
        ax.plot([], [], "o", color=PICK_COLOUR, label="recommended")
    ax.plot([], [], "o", color=OTHER_COLOUR, label="dominated")
    ax.set_xlabel("cost per 1,000 items (USD)")
    unit = "" if report.metric == "chrf" else " (%)"
    ax.set_ylabel(f"{report.metric}{unit}, 95% interval")
    ax.set_title(f"{report.task}: {len(report.configs)} configurations on {report.n_items} items")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_svg(report: EvalReport) -> str:
    buf = io.StringIO()
    _figure(report).savefig(buf, format="svg", metadata=_NO_METADATA)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # the element alone, to sit inline in a page


def _html(report: EvalReport) -> str:
    scale = _scale(report)
    rows = []
    for i, r in enumerate(report.configs):
        sc = r["metrics"][report.metric]
        score = "n/a" if sc["value"] is None else f"{scale * sc['value']:.1f}" + (
            f" [{scale * sc['ci'][0]:.1f}, {scale * sc['ci'][1]:.1f}]" if sc["ci"] else "")
        cost = r["cost_per_1000_items_usd"]
        mark = "recommended" if i == report.recommended else "Pareto front" if r.get("pareto") else ""
        rows.append(f'<tr id="row-{i}"><td>{i + 1}</td><td class="name">{html.escape(r["name"])}</td>'
                    f"<td>{score}</td><td>{'unknown' if cost is None else f'{cost:.4f}'}</td><td>{mark}</td></tr>")
    best = report.best
    said = "" if best is None else f"<p>Recommended: <b>{html.escape(best['name'])}</b>.</p>"
    stopped = "" if not report.stopped else f"<p>Stopped early: {html.escape(report.stopped)} (partial).</p>"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>flashlane eval: {html.escape(report.task)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>"
            f"<h1>flashlane eval: {html.escape(report.task)} on {report.n_items} items</h1>"
            f"{plot_svg(report)}{said}{stopped}"
            f"<table><thead><tr><th>#</th><th>configuration</th><th>{html.escape(report.metric)} [95% interval]</th>"
            "<th>$ per 1,000 items</th><th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            "</body></html>\n")


def write_plot(report: EvalReport, path: str | Path) -> Path:
    """Write the plot in the format its suffix names (.html, .png, .svg)."""
    fmt = check_plot_path(path)
    require_plot_extra()
    p = Path(path)
    if fmt == "png":
        _figure(report).savefig(p, format="png", dpi=PNG_DPI)
    else:
        p.write_text(_html(report) if fmt == "html" else plot_svg(report), encoding="utf-8")
    return p
