#!/usr/bin/env bash
# Live metrics in a real Prometheus (Debian's `prometheus` package, 2.42 on Debian 12), started
# here as a plain binary on loopback with its own configuration and data folder (never as a
# system service), its remote-write receiver on:
#
# 1. it scrapes `dpsbench run --metrics-listen` every second; the run lingers
#    (--metrics-linger) until its final page was scraped;
# 2. a second run, with faults that fail some devices, pushes to it with --metrics-push;
# 3. tests/prometheus/check.py queries its HTTP API (/api/v1/query): each run's figures equal
#    its summary.json, the zero series are there, and every query of the Grafana dashboard
#    (deploy/grafana/dpsbench.json) is valid PromQL returning data where data is expected.
#
# Ports: free ones (no fixed port). Everything is stopped and removed on exit (KEEP=1 keeps the
# work folder, with Prometheus's data, for a look).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin="${DPSBENCH_BIN:-$root/target/debug/dpsbench}"
prometheus="${PROMETHEUS:-prometheus}"
if ! command -v "$prometheus" >/dev/null; then
  echo "prometheus: FAIL no prometheus binary (Debian: apt-get install prometheus)" >&2
  exit 1
fi
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)

work=$(mktemp -d)
prometheus_pid=""
cleanup() {
  if [ -n "$prometheus_pid" ]; then kill -TERM "$prometheus_pid" 2>/dev/null || true; wait "$prometheus_pid" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# dpsbench's endpoint port is picked free here, for Prometheus's configuration; Prometheus binds
# port 0 and logs the port it got.
scrape_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: dpsbench-scrape
    static_configs:
      - targets: ["127.0.0.1:$scrape_port"]
YAML
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=127.0.0.1:0 --web.enable-remote-write-receiver >"$work/prometheus.log" 2>&1 &
prometheus_pid=$!
api=""
for _ in $(seq 300); do
  port=$(sed -n 's/.*msg="Listening on" address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/prometheus.log" | head -1)
  if [ -n "$port" ]; then api="http://127.0.0.1:$port"; break; fi
  if ! kill -0 "$prometheus_pid" 2>/dev/null; then
    echo "prometheus: FAIL it did not start:" >&2; cat "$work/prometheus.log" >&2; exit 1
  fi
  sleep 0.1
done
[ -n "$api" ] || { echo "prometheus: FAIL no listening address logged in 30 s" >&2; cat "$work/prometheus.log" >&2; exit 1; }
echo "prometheus: $("$prometheus" --version 2>&1 | head -1) at $api"
# Ready, and the scrape target tried once (its scrape manager applies targets every few seconds):
# from then on a run is scraped each second from its start.
python3 - "$api" <<'PY'
import json, sys, time, urllib.request
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(sys.argv[1] + "/api/v1/targets", timeout=2) as response:
            targets = json.load(response)["data"]["activeTargets"]
        if any(not t["lastScrape"].startswith("0001-") for t in targets):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("prometheus: FAIL its scrape target was not tried within 60 s")
PY

# The runs: 300 devices at 100/s, a few seconds each. The second one's emulator refuses one
# CONNECT in ten (CONNACK 3) and devices do not retry, so some fail as refused_3.
scenario() {
  cat <<TOML
name = "$1"
[target]
kind = "embedded"
retry_after_seconds = 0
assign_delay_ms = 20
$2
[devices]
count = 300
registration_id = "$1-{index:04}"
[arrival]
rate = 100
[flow]
max_retries = 0
[run]
max_duration_seconds = 60
max_schedule_lag_p99_ms = 5000
TOML
}
scenario scraped "" > "$work/scraped.toml"
scenario pushed $'[target.faults]\nseed = 7\nconnack_unavailable = 0.1' > "$work/pushed.toml"

echo "prometheus: run 1, scraped from --metrics-listen 127.0.0.1:$scrape_port every second"
status=0
"$bin" run "$work/scraped.toml" --out "$work/scraped" --quiet \
  --metrics-listen "127.0.0.1:$scrape_port" --metrics-linger 30s >"$work/scraped.out" 2>"$work/scraped.err" || status=$?
cat "$work/scraped.err"
if [ "$status" != 0 ]; then echo "prometheus: FAIL the scraped run exited $status" >&2; cat "$work/scraped.out" >&2; exit 1; fi
if grep -q "not scraped within" "$work/scraped.err"; then echo "prometheus: FAIL the final page was not scraped" >&2; exit 1; fi

echo "prometheus: run 2, pushed with --metrics-push $api/api/v1/write"
status=0
"$bin" run "$work/pushed.toml" --out "$work/pushed" --quiet \
  --metrics-push "$api/api/v1/write" --metrics-push-label instance=pushed-run >"$work/pushed.out" 2>"$work/pushed.err" || status=$?
cat "$work/pushed.err"
# Exit 1: the injected faults failed devices, as intended.
if [ "$status" != 1 ]; then echo "prometheus: FAIL the pushed run exited $status, not 1" >&2; cat "$work/pushed.out" >&2; exit 1; fi
grep -q "pushes, none failed" "$work/pushed.err" || { echo "prometheus: FAIL a push failed" >&2; exit 1; }

python3 "$root/tests/prometheus/check.py" --api "$api" --dashboard "$root/deploy/grafana/dpsbench.json" \
  --scraped "$work/scraped/summary.json" --pushed "$work/pushed/summary.json"
