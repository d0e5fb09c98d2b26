#!/usr/bin/env bash
# Installs the independent readers the tests check dpsbench's outputs with (the Prometheus
# exposition parser, a YAML parser, the HdrHistogram log reader, the Kubernetes API schemas, a JUnit XML reader,
# the OpenTelemetry protocol's messages) into target/report-venv on
# first use (needs PyPI), and prints the venv's python.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/target/report-venv"
if ! "$venv/bin/python" -c "import prometheus_client, yaml, hdrh.log, kubernetes_validate, junitparser, opentelemetry.proto.collector.metrics.v1.metrics_service_pb2" 2>/dev/null; then
  echo "tools: installing prometheus-client, PyYAML, hdrhistogram, kubernetes-validate, junitparser and opentelemetry-proto into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/tests/tools/requirements.txt" >&2
fi
echo "$venv/bin/python"
