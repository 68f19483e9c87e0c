#!/usr/bin/env python3
"""Draws the plots of docs/benchmarks.md from the figures in docs/data/.

    python3 bench/plots/plot.py          # writes docs/img/*.svg
    python3 bench/plots/plot.py --check  # exit 1 if docs/img/ is not what the data draws

Only Python's standard library is used: each chart is a grouped bar chart
written as SVG text by hand, so regenerating needs no package and no
network. Each bar is the median of the runs in its CSV row; the thin line
across it spans the lowest and the highest run. The output is the same
byte for byte for the same input, so a changed SVG in a diff means changed
figures.

The CSV files are the record: a figure is changed in docs/data/ first (and
in the table of docs/benchmarks.md that quotes it), then this script is run.
Lines starting with '#' are comments; an empty field means "not measured".
"""

import csv
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "data"
IMG = ROOT / "docs" / "img"

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
# Colour-blind-safe palette (Okabe and Ito), one colour per series.
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#56B4E9", "#D55E00", "#999999"]


def read_rows(name):
    """The rows of docs/data/NAME as dicts, comment lines skipped."""
    with open(DATA / name, newline="", encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines))


def number(text):
    """A CSV field as a float, or None when it is empty."""
    text = text.strip()
    return float(text) if text else None


def nice_step(span, ticks=5):
    """A tick step of 1, 2 or 5 times a power of ten giving about `ticks` ticks."""
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def fmt_tick(value, y_max):
    """A tick label: in thousands ("50k") when the axis goes past 10,000."""
    if y_max >= 10_000 and value:
        return f"{value / 1000:,.0f}k"
    return fmt(value)


def fmt(value):
    """A bar label: thousands separated, no needless decimals."""
    if value >= 1000 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}"


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Svg:
    """Collects SVG elements; `text()` returns the document."""

    def __init__(self, width, height):
        self.width, self.height = width, height
        self.parts = []

    def add(self, element):
        self.parts.append(element)

    def label(self, x, y, text, size=12, anchor="middle", weight="normal", rotate=None, fill="#222"):
        transform = f" transform='rotate({rotate} {x:.1f} {y:.1f})'" if rotate else ""
        self.add(
            f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}' text-anchor='{anchor}' "
            f"font-weight='{weight}' fill='{fill}'{transform}>{esc(text)}</text>"
        )

    def text(self):
        head = (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.width}' height='{self.height}' "
            f"viewBox='0 0 {self.width} {self.height}'>\n"
            f"<rect width='{self.width}' height='{self.height}' fill='white'/>\n"
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


def legend(svg, x, y, names):
    """One row of coloured squares and series names, starting at (x, y)."""
    for i, name in enumerate(names):
        svg.add(f"<rect x='{x}' y='{y - 10}' width='12' height='12' fill='{COLOURS[i]}'/>")
        svg.label(x + 17, y, name, anchor="start")
        # About 7.5 px per character at 12 px, then a gap before the next.
        x += 17 + 7.5 * len(name) + 24


def caption(svg, text):
    """A line of small grey text along the bottom: when, where, how to read."""
    svg.label(svg.width / 2, svg.height - 8, text, size=10, fill="#555")


def panel(svg, box, title, categories, x_title, y_title, series, value_labels=False):
    """A grouped bar chart in `box` = (x, y, width, height).

    `series` is a list of (name, values), one value per category: a tuple
    (median, lowest run, highest run) or (median, None, None), or a string
    written in place of a missing bar (e.g. "crashed").
    """
    x0, y0, w, h = box
    left, right, top, bottom = 62, 10, 28, 44
    px, py, pw, ph = x0 + left, y0 + top, w - left - right, h - top - bottom

    highest = max(
        (v[2] if v[2] is not None else v[0])
        for _, values in series
        for v in values
        if not isinstance(v, str)
    )
    step = nice_step(highest * 1.08)
    y_max = step * math.ceil(highest * 1.08 / step)

    def y_of(v):
        return py + ph - ph * v / y_max

    svg.label(x0 + w / 2, y0 + 16, title, size=13, weight="bold")
    # Horizontal grid lines and tick labels.
    tick = 0.0
    while tick <= y_max + step / 2:
        y = y_of(tick)
        svg.add(f"<line x1='{px}' y1='{y:.1f}' x2='{px + pw}' y2='{y:.1f}' stroke='#ddd'/>")
        svg.label(px - 6, y + 4, fmt_tick(tick, y_max), size=11, anchor="end", fill="#444")
        tick += step
    svg.add(f"<line x1='{px}' y1='{py}' x2='{px}' y2='{py + ph}' stroke='#444'/>")
    svg.add(f"<line x1='{px}' y1='{py + ph}' x2='{px + pw}' y2='{py + ph}' stroke='#444'/>")
    svg.label(x0 + 14, py + ph / 2, y_title, size=11, rotate=-90, fill="#444")
    svg.label(px + pw / 2, y0 + h - 8, x_title, size=11, fill="#444")

    group_w = pw / len(categories)
    bar_w = group_w * 0.8 / len(series)
    for c, category in enumerate(categories):
        gx = px + c * group_w + group_w * 0.1
        svg.label(px + (c + 0.5) * group_w, py + ph + 16, category, size=11)
        for s, (_, values) in enumerate(series):
            value = values[c]
            bx = gx + s * bar_w
            cx = bx + bar_w / 2
            if isinstance(value, str):
                svg.label(cx, py + ph - 6, value, size=10, rotate=-90, anchor="start", fill="#a00")
                continue
            median, low, high = value
            y = y_of(median)
            svg.add(
                f"<rect x='{bx + 1:.1f}' y='{y:.1f}' width='{bar_w - 2:.1f}' "
                f"height='{py + ph - y:.1f}' fill='{COLOURS[s]}'/>"
            )
            if low is not None and high is not None:
                svg.add(
                    f"<line x1='{cx:.1f}' y1='{y_of(low):.1f}' x2='{cx:.1f}' y2='{y_of(high):.1f}' "
                    f"stroke='#222' stroke-width='1.2'/>"
                )
                for v in (low, high):
                    svg.add(
                        f"<line x1='{cx - 3:.1f}' y1='{y_of(v):.1f}' x2='{cx + 3:.1f}' "
                        f"y2='{y_of(v):.1f}' stroke='#222' stroke-width='1.2'/>"
                    )
            if value_labels:
                top_y = y_of(high) if high is not None else y
                svg.label(cx, top_y - 4, fmt(median), size=10)


def runs(row, keys):
    """(median, lowest, highest) of a row, from its median and run columns."""
    values = [number(row[k]) for k in keys]
    return values[0], min(values[1:]), max(values[1:])


def pingpong():
    rows = read_rows("pingpong.csv")
    impls = ["net", "muduo", "tokio"]
    sessions = ["10", "100", "1000"]
    svg = Svg(860, 420)
    for i, threads in enumerate(["1", "2"]):
        series = []
        for impl in impls:
            values = []
            for s in sessions:
                row = next(
                    r
                    for r in rows
                    if r["impl"] == impl and r["threads"] == threads and r["sessions"] == s
                )
                values.append(
                    runs(row, ["median_mibs", "run1_mibs", "run2_mibs", "run3_mibs"])
                )
            series.append((impl, values))
        title = f"{threads} thread{'s' if threads != '1' else ''} (server and client)"
        panel(
            svg,
            (i * 430, 0, 430, 360),
            title,
            ["10", "100", "1,000"],
            "concurrent sessions (16 KiB blocks)",
            "throughput, MiB/s (median of 3)",
            series,
        )
    legend(svg, 270, 382, ["net (this port)", "muduo (C++)", "tokio"])
    caption(svg, "2026-11-26 · 2 vCPUs shared by server and client, loopback · load average 5–9 "
            "· bar: median, line: lowest to highest run")
    return svg


def chat_vs_original():
    rows = read_rows("chat-vs-original.csv")
    servers = ["original (C++)", "ours, SQLite", "ours, MySQL"]
    users = ["100", "1000"]
    svg = Svg(860, 420)
    metrics = [
        ("median_per_s", ["median_per_s", "run1_per_s", "run2_per_s", "run3_per_s"],
         "messages delivered per second", "delivered msgs/s (median of 3)"),
        ("server_cpu_us_per_msg", None,
         "server CPU per delivered message", "µs of server CPU per message (lower is better)"),
    ]
    for i, (key, run_keys, title, y_title) in enumerate(metrics):
        series = []
        for server in servers:
            values = []
            for u in users:
                row = next(r for r in rows if r["server"] == server and r["users"] == u)
                if number(row[key]) is None:
                    values.append("crashed")
                elif run_keys:
                    values.append(runs(row, run_keys))
                else:
                    values.append((number(row[key]), None, None))
            series.append((server, values))
        panel(
            svg,
            (i * 430, 0, 430, 360),
            title,
            ["100 users", "1,000 users"],
            "logged-in users in pairs, window 1",
            y_title,
            series,
            value_labels=True,
        )
    legend(svg, 250, 382, servers)
    caption(svg, "2026-11-26 · chat-bench chat --legacy, 10 s runs · 2 vCPUs shared with the "
            "load generator · the original crashed at 1,000 users (5 of 5 attempts)")
    return svg


def group_fanout():
    rows = read_rows("group-fanout.csv")
    members = ["10", "100", "1000"]
    series = []
    for threads in ["1", "2"]:
        values = []
        for m in members:
            row = next(r for r in rows if r["members"] == m and r["io_threads"] == threads)
            median, low, high = runs(
                row, ["median_k_per_s", "run1_k_per_s", "run2_k_per_s", "run3_k_per_s"]
            )
            values.append((median * 1000, low * 1000, high * 1000))
        series.append((f"{threads} I/O thread{'s' if threads != '1' else ''}", values))
    svg = Svg(520, 420)
    panel(
        svg,
        (0, 0, 520, 360),
        "group fan-out: deliveries per second",
        ["10", "100", "1,000"],
        "members in the group (10 of them sending, window 1)",
        "deliveries/s (median of 3)",
        series,
        value_labels=True,
    )
    legend(svg, 140, 382, [name for name, _ in series])
    caption(svg, "2026-11-26 · build a512ae2, SQLite · 2 vCPUs shared with the load generator")
    return svg


PLOTS = [
    ("pingpong.svg", pingpong),
    ("chat-vs-original.svg", chat_vs_original),
    ("group-fanout.svg", group_fanout),
]


def main(args):
    check = "--check" in args
    stale = []
    IMG.mkdir(parents=True, exist_ok=True)
    for name, draw in PLOTS:
        path = IMG / name
        text = draw().text()
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote docs/img/{name}")
    if stale:
        print("out of date (run python3 bench/plots/plot.py):", " ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
