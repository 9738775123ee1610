"""The training loss chart of hanul (train/metrics.h write_loss_plot_svg), read back.

For known metrics.jsonl files the script runs
    loss_plot_tool [--log] METRICS.jsonl OUT.svg TITLE
(tests/tools/loss_plot_tool.cpp: read_metrics, optionally copied through
MetricsLog, then write_loss_plot_svg) and parses the SVG with xml.etree. Required:
  - it is an SVG document (root <svg> in the SVG namespace, width/height/viewBox)
    with the title, the two axis labels and a two-entry legend;
  - exactly one series per loss that has finite values (train_loss, val_loss);
  - the axis transform read from the tick marks and their labels alone (a
    least-squares line through (label value, tick pixel), residual < 0.5 px)
    agrees with the one the chart documents in data-* attributes, and the ticks
    are evenly spaced by 1, 2 or 5 x 10^k;
  - every polyline vertex and validation marker, mapped back through the
    tick-derived transform, is its record's (step, loss) within one pixel, in
    step order, with the non-finite losses (null in the file) left out;
  - one point and zero points give a valid chart without NaN in it; a torn last
    line is skipped and a bad line in the middle fails naming the line.

    python tests/reference/check_loss_plot.py --tool build/tests/loss_plot_tool
"""
import argparse
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

SVG = "{http://www.w3.org/2000/svg}"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def write_jsonl(path, records, tail=""):
    with open(path, "w") as f:
        for r in records:
            line = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in r.items()}
            f.write(json.dumps(line, allow_nan=False) + "\n")
        f.write(tail)


def run_tool(tool, metrics, svg, title, through_log=False):
    cmd = [tool] + (["--log"] if through_log else []) + [str(metrics), str(svg), title]
    return subprocess.run(cmd, capture_output=True, text=True)


def parse_label(text):
    text = text.strip()
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def tick_transform(plot, axis_class, coord):
    """(a, b) with pixel = a * value + b, fitted to the tick marks and their labels."""
    axis = plot.find(f"{SVG}g[@class='{axis_class}']")
    pairs = []
    for tick in axis.findall(f"{SVG}g[@class='tick']"):
        lines = tick.findall(f"{SVG}line")
        label = tick.find(f"{SVG}text").text
        pairs.append((parse_label(label), float(lines[-1].get(coord + "1")),
                      float(tick.get("data-value"))))
    n = len(pairs)
    check(n >= 2, f"{axis_class}: {n} ticks")
    values = [p[0] for p in pairs]
    steps = [values[i + 1] - values[i] for i in range(n - 1)]
    step = steps[0]
    mant = step / 10 ** math.floor(math.log10(step) + 1e-9)
    check(any(abs(mant - m) < 1e-6 for m in (1, 2, 5)), f"{axis_class}: tick step {step} not 1/2/5")
    check(all(abs(s - step) <= 1e-9 * max(1.0, abs(step)) + 10 ** -6 * step for s in steps),
          f"{axis_class}: ticks not evenly spaced: {values}")
    check(all(abs(p[0] - p[2]) <= 0.5 * 10 ** math.floor(math.log10(step)) for p in pairs),
          f"{axis_class}: labels disagree with data-value")
    mx = sum(values) / n
    my = sum(p[1] for p in pairs) / n
    a = (sum((v - mx) * (p[1] - my) for v, p in zip(values, pairs)) /
         sum((v - mx) ** 2 for v in values))
    b = my - a * mx
    worst = max(abs(a * v + b - p[1]) for v, p in zip(values, pairs))
    check(worst < 0.5, f"{axis_class}: ticks off a straight line by {worst:.2f} px")
    return a, b, values


def parse_points(text):
    return [tuple(map(float, xy.split(","))) for xy in text.split()]


def check_chart(svg_path, title, records, name):
    tree = ET.parse(svg_path)  # raises on malformed XML: that is a failure too
    root = tree.getroot()
    check(root.tag == SVG + "svg", f"{name}: root is {root.tag}")
    width, height = float(root.get("width")), float(root.get("height"))
    check(root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}",
          f"{name}: viewBox")
    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    check(title in texts, f"{name}: title {title!r} missing from {texts[:3]}")
    check("step" in texts and "loss" in texts, f"{name}: axis labels")
    legend = root.find(f"{SVG}g[@class='legend']")
    check(legend is not None and len(legend.findall(f"{SVG}g[@class='legend-entry']")) == 2,
          f"{name}: legend")
    svg_text = Path(svg_path).read_text()
    check(not re.search(r"nan|inf", svg_text, re.I), f"{name}: non-finite number in the SVG")

    plot = root.find(f"{SVG}g[@id='plot-area']")
    attrs = {k: float(plot.get("data-" + k)) for k in
             ("x-min", "x-max", "y-min", "y-max", "left", "top", "width", "height")}
    check(0 <= attrs["left"] and attrs["left"] + attrs["width"] <= width and
          0 <= attrs["top"] and attrs["top"] + attrs["height"] <= height,
          f"{name}: plot area off the page")
    ax, bx, xticks = tick_transform(plot, "x-ticks", "x")
    ay, by, yticks = tick_transform(plot, "y-ticks", "y")
    # The documented transform and the tick-derived one are the same map.
    for v in (attrs["x-min"], attrs["x-max"]):
        frac = (v - attrs["x-min"]) / (attrs["x-max"] - attrs["x-min"])
        doc = attrs["left"] + frac * attrs["width"]
        check(abs(ax * v + bx - doc) < 0.5,
              f"{name}: x transform: ticks say {ax * v + bx}, attrs {doc}")
    for v in (attrs["y-min"], attrs["y-max"]):
        frac = (v - attrs["y-min"]) / (attrs["y-max"] - attrs["y-min"])
        doc = attrs["top"] + attrs["height"] - frac * attrs["height"]
        check(abs(ay * v + by - doc) < 0.5,
              f"{name}: y transform: ticks say {ay * v + by}, attrs {doc}")
    check(abs(xticks[0] - attrs["x-min"]) < 1e-9 and abs(xticks[-1] - attrs["x-max"]) < 1e-6,
          f"{name}: x ticks do not span the axis")

    series = {g.get("data-series"): g for g in plot.findall(f"{SVG}g[@class='series']")}
    want = {key: [(r["step"], r[key]) for r in records
                  if r.get(key) is not None and math.isfinite(r[key])]
            for key in ("train_loss", "val_loss")}
    check(set(series) == {k for k, v in want.items() if v},
          f"{name}: series {sorted(series)}, want those of {[k for k, v in want.items() if v]}")
    px_x = 1 / abs(ax)  # one pixel in data units
    px_y = 1 / abs(ay)
    for key, g in series.items():
        got = parse_points(g.find(f"{SVG}polyline").get("points"))
        if key == "val_loss":
            markers = [(float(c.get("cx")), float(c.get("cy"))) for c in g.findall(f"{SVG}circle")]
            check(len(markers) == len(want[key]), f"{name}: {len(markers)} markers for "
                                                  f"{len(want[key])} validation losses")
            check(all(abs(m[0] - p[0]) < 0.01 and abs(m[1] - p[1]) < 0.01
                      for m, p in zip(markers, got)),
                  f"{name}: markers are not on the line's vertices")
        if not check(len(got) == len(want[key]),
                     f"{name}: {key}: {len(got)} points, want {len(want[key])}"):
            continue
        bad = 0
        for (px, py), (step, loss) in zip(got, want[key]):
            x, y = (px - bx) / ax, (py - by) / ay
            inside = (attrs["left"] - 0.01 <= px <= attrs["left"] + attrs["width"] + 0.01 and
                      attrs["top"] - 0.01 <= py <= attrs["top"] + attrs["height"] + 0.01)
            if abs(x - step) > px_x or abs(y - loss) > px_y or not inside:
                if bad < 3:
                    print(f"  {name}: {key} vertex ({px}, {py}) reads ({x:.3f}, {y:.4f}), "
                          f"record ({step}, {loss})")
                bad += 1
        check(bad == 0, f"{name}: {key}: {bad} vertices off their records by more than a pixel")
    return series


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args = ap.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        # A 1000-step run: noisy train loss with a diverged step, validation every 50 steps.
        many = []
        for s in range(1, 1001):
            r = {"step": s, "tokens": s * 8192, "lr": 6e-4, "grad_norm": rng.uniform(0.3, 2),
                 "train_loss": 2.2 + 8.3 * math.exp(-s / 140) + rng.gauss(0, 0.12)}
            if s in (333, 334):
                r["train_loss"] = float("nan")
            if s % 50 == 0:
                r["val_loss"] = 2.3 + 8.3 * math.exp(-s / 140)
            many.append(r)
        many[499]["val_loss"] = float("inf")  # step 500: left out of the line and the markers
        write_jsonl(tmp / "many.jsonl", many, tail='{"step":1001,"tokens":81')  # torn tail
        for through_log in (False, True):
            name = "1000 steps" + (" via MetricsLog" if through_log else "")
            p = run_tool(args.tool, tmp / "many.jsonl", tmp / "many.svg", "tiny: 1000 steps",
                         through_log)
            if check(p.returncode == 0, f"{name}: tool failed: {p.stderr}"):
                series = check_chart(tmp / "many.svg", "tiny: 1000 steps", many, name)
                check(len(series) == 2, f"{name}: {len(series)} series, want 2")

        # Steps past 10000 with losses around 1: labels in k, small y ticks.
        late = [{"step": 20000 + 250 * i, "tokens": 0, "train_loss": 1.05 - 0.002 * i,
                 "val_loss": 1.07 - 0.002 * i} for i in range(40)]
        write_jsonl(tmp / "late.jsonl", late)
        p = run_tool(args.tool, tmp / "late.jsonl", tmp / "late.svg", "late")
        if check(p.returncode == 0, f"late: tool failed: {p.stderr}"):
            check_chart(tmp / "late.svg", "late", late, "late")

        # One point, and none.
        one = [{"step": 1, "tokens": 4096, "train_loss": 10.4, "val_loss": 10.5}]
        write_jsonl(tmp / "one.jsonl", one)
        p = run_tool(args.tool, tmp / "one.jsonl", tmp / "one.svg", "one")
        if check(p.returncode == 0, f"one: tool failed: {p.stderr}"):
            check_chart(tmp / "one.svg", "one", one, "one")
        write_jsonl(tmp / "none.jsonl", [])
        p = run_tool(args.tool, tmp / "none.jsonl", tmp / "none.svg", "none & <nothing>")
        if check(p.returncode == 0, f"none: tool failed: {p.stderr}"):
            series = check_chart(tmp / "none.svg", "none & <nothing>", [], "none")
            check(not series, "none: a series without data")

        # A bad line that is not the last one is an error naming it.
        (tmp / "bad.jsonl").write_text('{"step":1,"tokens":8}\n{"step":2,\n{"step":3,"tokens":8}\n')
        p = run_tool(args.tool, tmp / "bad.jsonl", tmp / "bad.svg", "bad")
        check(p.returncode != 0 and "line 2" in p.stderr,
              f"bad: rc {p.returncode}, stderr {p.stderr!r}")
        check(not (tmp / "bad.svg").exists(), "bad: an SVG was written anyway")

    if failures:
        print(f"{len(failures)} failures")
        return 1
    print("loss plot: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
