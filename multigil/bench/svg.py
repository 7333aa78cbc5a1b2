"""A hand-written SVG bar chart of a workloads.run() result: for each
workload, one panel of wall times and one of peak memory, a horizontal bar
per candidate (multigil's rows highlighted). No third-party packages."""
from xml.sax.saxutils import escape

WIDTH = 960
LABEL_W = 300
BAR_H = 18
GAP = 6
PANEL_GAP = 34
TITLE_H = 22
COLORS = {"multigil": "#2b7bb9", "multigil-columns": "#5fa8dc",
          "serial": "#888888"}
OTHER = "#c9a25e"


def _panel(y, title, bars, unit_fmt):
    """bars: [(label, kind, value or None)]. Returns (svg parts, height)."""
    parts = [f'<text x="8" y="{y + 15}" class="t">{escape(title)}</text>']
    y += TITLE_H
    top = max((v for _, _, v in bars if v), default=0) or 1.0
    span = WIDTH - LABEL_W - 110
    for label, kind, value in bars:
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + BAR_H - 5}" '
                     f'class="l">{escape(label)}</text>')
        if value:
            w = max(1.0, span * value / top)
            color = COLORS.get(kind, OTHER)
            parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" '
                         f'height="{BAR_H}" fill="{color}"/>')
            parts.append(f'<text x="{LABEL_W + w + 6:.1f}" '
                         f'y="{y + BAR_H - 5}" class="v">'
                         f'{escape(unit_fmt(value))}</text>')
        else:
            parts.append(f'<text x="{LABEL_W + 6}" y="{y + BAR_H - 5}" '
                         f'class="v">n/a</text>')
        y += BAR_H + GAP
    return parts, TITLE_H + len(bars) * (BAR_H + GAP)


def chart(res):
    """The SVG document (a str)."""
    body, y = [], 40
    for name, wl in res["workloads"].items():
        rows = wl["rows"]
        for title, key, fmt in (
                ("wall time, s (shorter is better)", "seconds",
                 lambda v: f"{v:.2f} s"),
                ("peak PSS of the process tree, MB", "peak_pss",
                 lambda v: f"{v / 2**20:,.0f} MB")):
            bars = [(r["label"], r["kind"], r.get(key)) for r in rows]
            parts, h = _panel(y, f"{name}: {title}", bars, fmt)
            body.extend(parts)
            y += h + PANEL_GAP
    head = (f"multigil {res['multigil']} bench, CPython {res['python']}, "
            f"{res['usable_cpus']} CPUs, {res['workers']} workers")
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{y}" viewBox="0 0 {WIDTH} {y}">',
        "<style>text{font-family:sans-serif;font-size:12px}"
        ".t{font-weight:bold;font-size:13px}.l{text-anchor:end}"
        ".h{font-size:15px;font-weight:bold}</style>",
        f'<rect width="{WIDTH}" height="{y}" fill="white"/>',
        f'<text x="8" y="22" class="h">{escape(head)}</text>',
        *body,
        "</svg>",
    ]) + "\n"


def write(res, path):
    with open(path, "w", encoding="utf-8") as f:
        f.write(chart(res))
