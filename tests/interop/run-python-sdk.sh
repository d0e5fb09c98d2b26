#!/usr/bin/env bash
# Python SDK interop test: Microsoft's azure-iot-device SDK provisions devices of a symmetric-key
# enrollment group against `dpsbench emulator`, unchanged, trusting only the emulator's CA: over
# MQTT (SNI host name, then again by IP address), over MQTT over WebSocket, and with X.509
# certificates. The emulator judges the SDK as a client (--client-report): the SDK must pass every
# must-check, and the should-checks it breaks are pinned below. A second emulator with DPS's own
# retry-after of 3 s pins the SDK's early first poll.
#
# The SDK always connects to port 8883 (MQTT) or 443 (WebSocket), so the emulator listens on
# 127.0.0.1:8883 and 127.0.0.1:443 (loopback only; 443 needs root or CAP_NET_BIND_SERVICE).
# Installs the pinned SDK into target/interop-venv on first use (needs PyPI).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/target/interop-venv"
bin="${DPSBENCH_BIN:-$root/target/debug/dpsbench}"
count="${INTEROP_DEVICES:-12}"

if ! "$venv/bin/python" -c "import azure.iot.device" 2>/dev/null; then
  echo "interop: installing azure-iot-device into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/interop/requirements.txt"
fi
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)

work=$(mktemp -d)
emulator_pid=""
cleanup() {
  if [ -n "$emulator_pid" ]; then kill -TERM "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

group_key=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')
"$bin" certs --out "$work/x509" --count "$count" --registration-id "pysdk-x509-{index:03}" >/dev/null
# emulator_config RETRY_AFTER: the emulator's configuration, with a symmetric-key and an X.509 group.
emulator_config() {
  cat > "$work/emulator.toml" <<TOML
id_scope = "0ne00PYSDK1"
hubs = ["hub-a.azure-devices.net", "hub-b.azure-devices.net"]
retry_after_seconds = $1
assign_delay_ms = 300
[[enrollment_groups]]
name = "python-sdk"
primary_key = "$group_key"
[[enrollment_groups]]
name = "python-sdk-x509"
ca_certificate = "$work/x509/root.pem"
TOML
}

# start_emulator REPORT_DIR: the SDK always uses port 8883 for MQTT and 443 for MQTT over WebSocket.
start_emulator() {
  "$bin" emulator --config "$work/emulator.toml" --listen 127.0.0.1:8883 --ws-listen 127.0.0.1:443 \
    --ca-out "$work/ca.pem" --client-report "$1" --client-detail pysdk-000 --force \
    >"$work/emulator.out" 2>"$work/emulator.err" &
  emulator_pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$work/emulator.out" 2>/dev/null && break
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
      echo "interop: the emulator did not start:" >&2; cat "$work/emulator.err" >&2; exit 1
    fi
    sleep 0.1
  done
  grep -q "listening on" "$work/emulator.out" || { echo "interop: emulator not ready after 10 s" >&2; exit 1; }
}

# stop_emulator: SIGTERM; sets emulator_status to its exit status (the client report's verdict).
stop_emulator() {
  kill -TERM "$emulator_pid"
  emulator_status=0
  wait "$emulator_pid" || emulator_status=$?
  emulator_pid=""
}

# client_checks REPORT_DIR EXPECTED_STATUS STATUS FAILED_IDS...: the emulator exited as expected and
# exactly FAILED_IDS failed.
client_checks() {
  local dir=$1 expected=$2 status=$3
  shift 3
  python3 - "$dir/clients.json" "$expected" "$status" "$@" <<'PY'
import json, sys
path, expected, status, pinned = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), set(sys.argv[4:])
report = json.load(open(path))
failed = {c["id"] for c in report["checks"] if c["verdict"] == "fail"}
for c in report["checks"]:
    if c["verdict"] == "fail":
        example = c["examples"][0] if c["examples"] else {}
        print("interop: client check {} ({}) broken by {} of {}: {}".format(
            c["id"], c["level"], c["violations"], c["judged"], example.get("evidence", "")))
ok = failed == pinned and status == expected and report["connections"] > 0
print("interop: client checks {}: {} connections judged, exit {} (expected {}), failed {} (pinned {})".format(
    "ok" if ok else "FAIL", report["connections"], status, expected, sorted(failed), sorted(pinned)))
sys.exit(0 if ok else 1)
PY
}

emulator_config 1
start_emulator "$work/clients"

provision() {
  DPS_GROUP_KEY="$group_key" "$venv/bin/python" "$root/tests/interop/provision_python.py" \
    --id-scope 0ne00PYSDK1 --ca "$work/ca.pem" --expect-hubs hub-a.azure-devices.net,hub-b.azure-devices.net \
    --timeout 60 "$@"
}

failed=0
echo "interop: $count devices through the Python SDK, host localhost (SNI)"
provision --host localhost --count "$count" --prefix pysdk | tee "$work/first.txt" || failed=1
echo "interop: the same devices again, host 127.0.0.1 (no SNI): a second registration keeps hub and device ID"
provision --host 127.0.0.1 --count "$count" --prefix pysdk | tee "$work/second.txt" || failed=1
if ! diff <(grep '^ok ' "$work/first.txt" | sort) <(grep '^ok ' "$work/second.txt" | sort) >/dev/null; then
  echo "interop: FAIL re-registration changed an assignment" >&2
  diff <(grep '^ok ' "$work/first.txt" | sort) <(grep '^ok ' "$work/second.txt" | sort) >&2 || true
  failed=1
fi
echo "interop: $count more devices through the Python SDK over MQTT over WebSocket (wss, port 443)"
provision --host localhost --count "$count" --prefix pysdk-ws --websockets | tee "$work/websocket.txt" || failed=1
echo "interop: $count more devices through the Python SDK with X.509 certificates (CN = registration ID)"
provision --host localhost --count "$count" --prefix pysdk-x509 --x509-dir "$work/x509/devices" | tee "$work/x509.txt" || failed=1
passed=$(grep -c '^ok ' "$work/first.txt" "$work/second.txt" "$work/websocket.txt" "$work/x509.txt" | awk -F: '{s+=$2} END {print s}')
echo "interop: $passed passed, $((4 * count - passed)) failed"

# The SDK as a client: every must-check passes; it breaks two should-checks, as its code says
# (SDK_NOTES.md): CleanSession 0 and no skn in its SAS token.
stop_emulator
client_checks "$work/clients" 0 "$emulator_status" DPS-CLIENT-AUTH-002 DPS-CLIENT-MQTT-004 || failed=1

# With DPS's own retry-after (3 s) the SDK's first poll comes after its fixed 2 s: a broken
# must-check (DPS-CLIENT-FLOW-001), pinned so a fixed SDK shows up here.
echo "interop: 2 devices against retry-after 3 s (what DPS sends)"
emulator_config 3
start_emulator "$work/clients-retry-after-3"
provision --host localhost --count 2 --prefix pysdk-ra3 | tee "$work/ra3.txt" || failed=1
stop_emulator
client_checks "$work/clients-retry-after-3" 1 "$emulator_status" DPS-CLIENT-AUTH-002 DPS-CLIENT-MQTT-004 DPS-CLIENT-FLOW-001 \
  || failed=1
exit "$failed"
