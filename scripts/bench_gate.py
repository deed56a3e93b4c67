#!/usr/bin/env python3
"""Summarise and gate a scripts/bench-compare.sh run.

    scripts/bench_gate.py BENCH_DIR [--max-regression PCT]
    scripts/bench_gate.py --selftest

BENCH_DIR holds <before|after>-<round>/<case>.json outcomes (stompbox-bench --json). Prints one
line per run, then per case the median of the rounds, before against after. Exits 1 when any
run lost, duplicated or reordered a message, or when a case's median regressed by more than PCT
(default 10) in the direction that matters for it: throughput down, p99 latency up, bytes per
connection up. Why medians of alternated rounds: this machine is shared, and a single run's p99
moves by more than 10 % with the load; the median of rounds that alternate before and after is
the least noisy comparison a same-run check can make.
"""
import json
import pathlib
import statistics
import sys


def figures(outcome):
    """The figures a case is judged on, each with the direction that is better."""
    lat = outcome.get("latency") or {}
    out = {}
    if outcome.get("bytes_per_connection"):
        out["bytes/conn"] = (outcome["bytes_per_connection"], "lower")
    else:
        out["throughput"] = (outcome["throughput"], "higher")
        # At an unbounded rate (--rate 0) latency is queueing time, not a figure to hold.
        if lat.get("p99_us") and str(outcome.get("params", {}).get("rate")) != "0":
            out["p99 us"] = (lat["p99_us"], "lower")
    return out


def load(root):
    runs = []  # (side, round, case, outcome)
    for path in sorted(pathlib.Path(root).glob("*/*.json")):
        side, _, rnd = path.parent.name.partition("-")
        runs.append((side, rnd, path.stem, json.loads(path.read_text())))
    return runs


def judge(runs, max_regression):
    """Returns (lines, failures)."""
    lines, failures = [], []
    for side, rnd, case, o in runs:
        lat = o.get("latency") or {}
        per = o.get("bytes_per_connection")
        lines.append(
            f"{side}-{rnd:3} {case:14} {o['throughput']:>11,.0f}/s "
            f"p50 {lat.get('p50_us', 0):>7.0f} us  p99 {lat.get('p99_us', 0):>7.0f} us  "
            f"lost {o['lost']}  dup {o['duplicated']}  reordered {o.get('out_of_order', 0)}"
            + (f"  {per:,.0f} B/conn" if per else "")
        )
        bad = {k: o.get(k, 0) for k in ("lost", "duplicated", "out_of_order") if o.get(k, 0)}
        if bad:
            failures.append(f"{side}-{rnd} {case}: {bad}")
    cases = sorted({case for _, _, case, _ in runs})
    lines.append("")
    for case in cases:
        per_side = {}
        for side in ("before", "after"):
            values = [figures(o) for s, _, c, o in runs if s == side and c == case]
            per_side[side] = values
        if not per_side["before"] or not per_side["after"]:
            failures.append(f"{case}: missing a before or an after run")
            continue
        for name, (_, better) in per_side["after"][0].items():
            before = statistics.median(v[name][0] for v in per_side["before"] if name in v)
            after = statistics.median(v[name][0] for v in per_side["after"] if name in v)
            change = (after - before) / before * 100 if before else 0.0
            worse = change < -max_regression if better == "higher" else change > max_regression
            verdict = "REGRESSION" if worse else "ok"
            lines.append(
                f"{case:14} {name:11} before {before:>12,.1f}  after {after:>12,.1f}  "
                f"{change:+6.1f} %  {verdict}"
            )
            if worse:
                failures.append(f"{case} {name}: {change:+.1f} % (limit {max_regression} %)")
    return lines, failures


def selftest():
    def outcome(tp, p99, lost=0):
        return {"throughput": tp, "latency": {"p50_us": 1, "p99_us": p99}, "lost": lost,
                "duplicated": 0, "out_of_order": 0}
    same = [("before", "1", "x", outcome(100, 50)), ("after", "1", "x", outcome(99, 52))]
    assert not judge(same, 10)[1], "a 4 % change passed as a regression"
    slower = [("before", "1", "x", outcome(100, 50)), ("after", "1", "x", outcome(100, 60))]
    assert judge(slower, 10)[1], "p99 +20 % was not caught"
    fewer = [("before", "1", "x", outcome(100, 50)), ("after", "1", "x", outcome(80, 50))]
    assert judge(fewer, 10)[1], "throughput -20 % was not caught"
    lossy = [("before", "1", "x", outcome(100, 50)), ("after", "1", "x", outcome(100, 50, 1))]
    assert judge(lossy, 10)[1], "a lost message was not caught"
    mem = {"throughput": 0, "lost": 0, "duplicated": 0, "bytes_per_connection": 3000}
    fat = dict(mem, bytes_per_connection=3400)
    assert judge([("before", "1", "i", mem), ("after", "1", "i", fat)], 10)[1], "memory +13 %"
    flat_out = dict(outcome(100, 50), params={"rate": "0"})
    queued = dict(outcome(100, 500), params={"rate": "0"})
    assert not judge([("before", "1", "f", flat_out), ("after", "1", "f", queued)], 10)[1], \
        "p99 at an unbounded rate was gated"
    print("bench_gate selftest: ok")


def main(argv):
    if argv[1:] == ["--selftest"]:
        selftest()
        return 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 64
    limit = 10.0
    if "--max-regression" in argv:
        limit = float(argv[argv.index("--max-regression") + 1])
    lines, failures = judge(load(argv[1]), limit)
    print("\n".join(lines))
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
