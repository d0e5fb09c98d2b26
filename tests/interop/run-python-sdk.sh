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

source "$root/tests/interop/judging.sh"
"$bin" certs --out "$work/x509" --count "$count" --registration-id "pysdk-x509-{index:03}" >/dev/null

emulator_config 1
start_emulator "$work/clients" pysdk-000

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
start_emulator "$work/clients-retry-after-3" pysdk-ra3-000
provision --host localhost --count 2 --prefix pysdk-ra3 | tee "$work/ra3.txt" || failed=1
stop_emulator
client_checks "$work/clients-retry-after-3" 1 "$emulator_status" DPS-CLIENT-AUTH-002 DPS-CLIENT-MQTT-004 DPS-CLIENT-FLOW-001 \
  || failed=1
exit "$failed"
