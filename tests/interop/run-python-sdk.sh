#!/usr/bin/env bash
# Python SDK interop test: Microsoft's azure-iot-device SDK provisions devices of a symmetric-key
# enrollment group against `dpsbench emulator`, unchanged, trusting only the emulator's CA: over
# MQTT (SNI host name, then again by IP address), and over MQTT over WebSocket.
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
cat > "$work/emulator.toml" <<TOML
id_scope = "0ne00PYSDK1"
hubs = ["hub-a.azure-devices.net", "hub-b.azure-devices.net"]
retry_after_seconds = 1
assign_delay_ms = 300
[[enrollment_groups]]
name = "python-sdk"
primary_key = "$group_key"
TOML

# The SDK always uses port 8883 for MQTT and 443 for MQTT over WebSocket.
"$bin" emulator --config "$work/emulator.toml" --listen 127.0.0.1:8883 --ws-listen 127.0.0.1:443 \
  --ca-out "$work/ca.pem" >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$work/emulator.out" 2>/dev/null && break
  if ! kill -0 "$emulator_pid" 2>/dev/null; then
    echo "interop: the emulator did not start:" >&2; cat "$work/emulator.err" >&2; exit 1
  fi
  sleep 0.1
done
grep -q "listening on" "$work/emulator.out" || { echo "interop: emulator not ready after 10 s" >&2; exit 1; }

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
passed=$(grep -c '^ok ' "$work/first.txt" "$work/second.txt" "$work/websocket.txt" | awk -F: '{s+=$2} END {print s}')
echo "interop: $passed passed, $((3 * count - passed)) failed"
exit "$failed"
