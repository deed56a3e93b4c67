#!/usr/bin/env python3
"""What each node of a Redis Cluster did during a benchmark: CPU seconds, commands, sharded and
classic publishes, bytes in and out, per node, with its role (primary or replica).

    scripts/redis-shard-stats.py snapshot DIR > before.json   # before the run
    scripts/redis-shard-stats.py report DIR before.json        # after: the differences

DIR holds one directory per cluster node with its `port` file (`.run/services/redis-cluster`,
made by `scripts/services.sh up redis-cluster`). Counters are read from `INFO` (cumulative since
each node started), so nothing is reset and two runs can overlap their snapshots. Used by
`scripts/bench-cluster.sh --redis cluster`; the figures are in docs/benchmarks.md and
docs/capacity.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIELDS = {
    "cpu_s": ("used_cpu_sys", "used_cpu_user"),
    "commands": ("total_commands_processed",),
    "bytes_in": ("total_net_input_bytes",),
    "bytes_out": ("total_net_output_bytes",),
}
COMMANDS = ("spublish", "publish", "evalsha", "eval", "set")


def info(port: int) -> dict[str, str]:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "everything"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    pairs = (line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("#"))
    return {k: v.strip() for k, v in pairs}


def calls(values: dict[str, str], command: str) -> int:
    stat = values.get(f"cmdstat_{command}", "")
    for part in stat.split(","):
        if part.startswith("calls="):
            return int(part[len("calls="):])
    return 0


def snapshot(cluster_dir: Path) -> dict[str, dict]:
    nodes = {}
    for node in sorted(p for p in cluster_dir.iterdir() if (p / "port").is_file()):
        port = int((node / "port").read_text())
        try:
            values = info(port)
        except (subprocess.SubprocessError, OSError):
            continue  # a node down (killed by a test) has nothing to report
        row = {"port": port, "role": values.get("role", "?")}
        for name, keys in FIELDS.items():
            row[name] = sum(float(values.get(k, 0)) for k in keys)
        for command in COMMANDS:
            row[command] = calls(values, command)
        nodes[node.name] = row
    return nodes


def report(cluster_dir: Path, before_file: Path) -> None:
    before = json.loads(before_file.read_text())
    after = snapshot(cluster_dir)
    print("| redis node | role | CPU s | commands | SPUBLISH | PUBLISH | EVALSHA+EVAL | SET | MB in | MB out |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in after.items():
        was = before.get(name)
        if was is None or was["role"] != row["role"]:
            print(f"| {name} ({row['port']}) | {row['role']} (changed during the run) | | | | | | | | |")
            continue
        d = {k: row[k] - was[k] for k in row if k not in ("port", "role")}
        print(
            f"| {name} ({row['port']}) | {row['role']} | {d['cpu_s']:.2f} | {d['commands']:,.0f} | "
            f"{d['spublish']:,} | {d['publish']:,} | {d['evalsha'] + d['eval']:,} | {d['set']:,} | "
            f"{d['bytes_in'] / 1e6:.1f} | {d['bytes_out'] / 1e6:.1f} |"
        )


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "snapshot":
        json.dump(snapshot(Path(argv[2])), sys.stdout)
        return 0
    if len(argv) == 4 and argv[1] == "report":
        report(Path(argv[2]), Path(argv[3]))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
