"""The Grafana dashboard and the alert rules, checked against a real Prometheus (Debian's
`prometheus` package, scripts/setup-prometheus.sh) scraping real processes: one broker on Kafka
-> stompbox-sink -> PostgreSQL (with the sink's own endpoint), and a 3-node cluster on Redis and
PostgreSQL behind nginx (scripts/cluster.sh). Chat and topic traffic runs on both; then every
expression of deploy/grafana/stompbox.json and deploy/prometheus/alerts.yml is evaluated through
Prometheus' HTTP API: each must return series, and the latency ones a plausible value.

Run by scripts/prometheus-check.sh (from scripts/test.sh), which installs Prometheus and starts
the services; without them this file fails (STOMPBOX_REQUIRE_SERVICES=1) or skips.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import streamed
from conftest import REPO, Broker, WAIT_S, broker_binary, start_broker

DASHBOARD = REPO / "deploy" / "grafana" / "stompbox.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
# Scrapes every second, so a few seconds of traffic span several samples of every rate().
SCRAPE = "1s"
# Grafana's `$__rate_interval`, as the check evaluates it.
RATE_INTERVAL = "1m"
# Latencies are plausible between these (seconds): above zero, below the histograms' top bucket.
PLAUSIBLE_S = (0.0, 10.0)
# How long Prometheus may take to have scraped the traffic (a few scrapes at 1 s).
SETTLE_S = 20.0
# The top-level comparison of an alert expression: `<measure> <op> <threshold>`.
COMPARISON = re.compile(r"^(?P<measure>.*\S)\s+(?P<op>==|!=|>=|<=|>|<)\s+(?P<threshold>[0-9.e+-]+)$", re.S)


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found:
        return found
    message = f"{tool} not installed: run scripts/setup-prometheus.sh"
    if os.environ.get("STOMPBOX_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    return streamed.free_port()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, `$__rate_interval` filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"].replace("$__rate_interval", RATE_INTERVAL)))
    return found


def alert_rules() -> list[tuple[str, str]]:
    """(alert name, expr) from the rules file (promtool has checked it): the file is ours and
    flat, `- alert:` then `expr:` on one line, so a line reader does without a YAML library."""
    rules, name = [], None
    for line in ALERTS.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("- alert:"):
            name = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("expr:") and name:
            rules.append((name, stripped.split(":", 1)[1].strip()))
            name = None
    return rules


def is_latency(expr: str) -> bool:
    """A latency measure (not its alert's `bool` form, which reads 0 or 1)."""
    return "histogram_quantile" in expr and "_seconds_bucket" in expr and " bool " not in expr


class Prometheus:
    """A private Prometheus on a free loopback port, stopped by its PID."""

    def __init__(self, workdir: Path, jobs: dict[str, list[str]]):
        self.port = free_port()
        config = workdir / "prometheus.yml"
        scrape = "\n".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: [{', '.join(repr(t) for t in targets)}]"
            for job, targets in jobs.items()
        )
        config.write_text(
            f"global:\n  scrape_interval: {SCRAPE}\n  evaluation_interval: {SCRAPE}\n"
            f"rule_files:\n  - {ALERTS}\nscrape_configs:\n{scrape}\n"
        )
        self.log = workdir / "prometheus.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    need("prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"prometheus not ready; log:\n{self.log.read_text()[-3000:]}")

    def scraped_all(self, targets: int) -> None:
        """Waits until every target was scraped and is up, so the traffic that follows shows
        up as an increase between two samples (what rate() needs)."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            up = [float(s["value"][1]) for s in self.query("up")]
            if len(up) == targets and all(v == 1 for v in up):
                return
            assert time.monotonic() < deadline, f"targets up: {up} (want {targets})"
            time.sleep(0.5)

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = get_json(url)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{expr}\n  refused by Prometheus: {e.read().decode(errors='replace')}") from None
        assert answer["status"] == "success", f"{expr}: {answer}"
        return answer["data"]["result"]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def streamed_broker(tmp_path):
    """A broker on Kafka -> sink -> PostgreSQL; the sink serves its metrics on a free port."""
    need("prometheus")
    try:
        storage = streamed.Storage.create(tmp_path, start_sink=False)
    except RuntimeError as e:
        if os.environ.get("STOMPBOX_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(str(e))
    sink_port = free_port()
    storage.sink.args += ["--metrics-addr", f"127.0.0.1:{sink_port}", "--log-interval", "1s"]
    storage.sink.start()
    broker = start_broker(tmp_path, *storage.broker_args())
    yield broker, f"127.0.0.1:{sink_port}"
    broker.stop()
    storage.sink.stop()


@pytest.fixture
def cluster(tmp_path):
    """Three nodes behind nginx (scripts/cluster.sh, in a private directory)."""
    need("prometheus")
    directory = tmp_path / "cluster"
    env = {**os.environ, "STOMPBOX_CLUSTER_DIR": str(directory), "STOMPBOX_BIN": str(broker_binary())}
    up = subprocess.run(
        [REPO / "scripts" / "cluster.sh", "up", "-n", "3"], env=env, capture_output=True, text=True, timeout=120
    )
    if up.returncode != 0:
        subprocess.run([REPO / "scripts" / "cluster.sh", "down"], env=env, capture_output=True, timeout=60)
        pytest.fail(f"cluster.sh up failed:\n{up.stderr[-3000:]}")
    values = {}
    for line in (directory / "cluster.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key] = value.strip('"')
    nodes = []
    for i, (stomp_addr, ws) in enumerate(zip(values["STOMPBOX_NODE_STOMP"].split(), values["STOMPBOX_NODE_WS"].split())):
        host, port = stomp_addr.rsplit(":", 1)
        http_port = int(ws.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        nodes.append(Broker(None, host, int(port), http_port, directory / f"node{i}" / "node.log"))
    yield nodes
    subprocess.run([REPO / "scripts" / "cluster.sh", "down"], env=env, capture_output=True, timeout=60)


def topic_traffic(connect, publisher_at: Broker, subscriber_at: Broker, name: str, count: int) -> None:
    """`count` SENDs to a topic on one node, each received by a subscriber on another."""
    destination = f"/topic/{name}"
    subscriber = connect("metrics-sub", target=subscriber_at)
    subscriber.subscribe(destination, "s1")
    publisher = connect("metrics-pub", target=publisher_at)
    # Cluster interest travels through Redis: probe until a message crosses.
    deadline = time.monotonic() + WAIT_S
    while True:
        publisher.conn.send(destination, "probe")
        try:
            subscriber.listener.message(timeout=0.5)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "no delivery from publisher to subscriber"
    for i in range(count):
        publisher.conn.send(destination, f"m{i}")
    publisher.send(destination, "last")
    while subscriber.listener.message().body != "last":
        pass


def chat_traffic(chat, target: Broker, peer_at: Broker, unique: str, count: int) -> None:
    """Sends with RECEIPTs (store writes, deliveries), a read mark, and one refused request."""
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=peer_at)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    for i in range(count):
        last = alice.send_message(f"hello {i}", conversation=conversation)
    for _ in range(count):
        bob.frame("messages")
    alice.call("chat.read", {"conversationId": conversation, "messageId": last})
    # An error outcome: a conversation that does not exist.
    alice.request("chat.send", {"content": "x", "conversationId": f"g:nope-{unique}"})
    alice.frame("errors")


def test_dashboard_and_alert_expressions_return_plausible_data(
    tmp_path, streamed_broker, cluster, connect, chat, unique
):
    single, sink = streamed_broker
    promtool = subprocess.run([need("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr

    prometheus = Prometheus(
        tmp_path,
        {
            "stompbox": [f"127.0.0.1:{single.http_port}"],
            "stompbox-cluster": [f"127.0.0.1:{n.http_port}" for n in cluster],
            "stompbox-sink": [sink],
        },
    )
    try:
        prometheus.scraped_all(targets=1 + len(cluster) + 1)
        # A refused CONNECT (a user name that cannot be a principal): an auth failure series.
        refused = connect("bad/name", target=single, expect_connected=False)
        refused.listener.error()
        topic_traffic(connect, single, single, f"metrics.{unique}", 50)
        topic_traffic(connect, cluster[0], cluster[1], f"metrics.{unique}", 50)
        chat_traffic(chat, single, single, unique, 10)
        chat_traffic(chat, cluster[1], cluster[2], f"c{unique}", 10)

        expressions = [("dashboard: " + t, e) for t, e in dashboard_expressions()]
        for name, expr in alert_rules():
            match = COMPARISON.match(expr)
            assert match, f"alert {name}: not `<measure> <op> <threshold>`: {expr}"
            # The `bool` form returns every series of the measure, firing or not.
            expressions.append((f"alert {name}", f"{match['measure']} {match['op']} bool {match['threshold']}"))
            expressions.append((f"alert {name} (measure)", match["measure"]))
        assert len(expressions) > 40

        # Until every expression has data (the traffic scraped), bounded.
        deadline = time.monotonic() + SETTLE_S
        while True:
            results = {expr: prometheus.query(expr) for _, expr in expressions}
            missing = [(n, e) for n, e in expressions if not results[e]]
            unsettled = [(n, e) for n, e in expressions if is_latency(e) and not plausible(results[e])]
            if not missing and not unsettled:
                break
            if time.monotonic() > deadline:
                report = "\n".join(f"  no data: {n}: {e}" for n, e in missing)
                report += "\n".join(f"  implausible: {n}: {e} -> {values(results[e])}" for n, e in unsettled)
                pytest.fail(f"after {SETTLE_S}s:\n{report}")
            time.sleep(1)
        for name, expr in expressions:
            if is_latency(expr):
                low, high = PLAUSIBLE_S
                for v in values(results[expr]):
                    assert math.isnan(v) or low < v < high, f"{name}: {expr} -> {v}"
    finally:
        prometheus.stop()


def values(result: list[dict]) -> list[float]:
    return [float(sample["value"][1]) for sample in result]


def plausible(result: list[dict]) -> bool:
    """At least one series with a latency in range (instances without traffic read NaN)."""
    low, high = PLAUSIBLE_S
    return any(low < v < high for v in values(result))
