#!/usr/bin/env bash
# The dashboard (deploy/grafana/stompbox.json) and the alert rules (deploy/prometheus/alerts.yml)
# against a real Prometheus: installs Debian's prometheus (scripts/setup-prometheus.sh), starts the
# services when they are not up, then runs clients/python/metrics/test_prometheus.py, which scrapes
# a broker on Kafka with its sink and a 3-node cluster, drives traffic, and evaluates every
# expression through Prometheus' HTTP API. Well under a minute once built.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-prometheus.sh
./scripts/setup-python.sh >/dev/null
./scripts/services.sh up >/dev/null
export STOMPBOX_REQUIRE_SERVICES=1
cd clients/python
../../.venv/bin/python -m pytest metrics/test_prometheus.py "$@"
