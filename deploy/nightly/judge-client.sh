#!/usr/bin/env bash
# Judges a client: starts `dpsbench emulator --client-report` on loopback, runs the client
# against it, and exits with the emulator's verdict (0, 1 when the client broke a must-check,
# or 3 when no client was judged, e.g. none got past its TLS handshake; the reports are in
# OUT/clients either way).
#
# CLIENT_COMMAND is the client under test, run with bash once the emulator is ready, with
# DPS_HOST, DPS_PORT, DPS_ID_SCOPE, DPS_CA (the PEM to trust) and DPS_GROUP_KEY (an enrollment
# group's key, to derive device keys from) in its environment. It must make CONNECTIONS
# connections in all (the emulator stops after that many; a client that makes fewer is cut off
# after TIMEOUT seconds). Without CLIENT_COMMAND, dpsbench's own devices are the client. LISTEN
# is the emulator's address (default 127.0.0.1:0, a free port; SDKs that hard-code 8883 need
# 127.0.0.1:8883). FAULTS is a [faults] table body for the emulator, e.g.
# 'connack_unavailable = 0.2' to judge how the client reconnects.
set -euo pipefail
bin="${DPSBENCH:-target/release/dpsbench}"
out="${OUT:-out}"
listen="${LISTEN:-127.0.0.1:0}"
connections="${CONNECTIONS:-20}"
timeout="${TIMEOUT:-600}"
work=$(mktemp -d)
emulator_pid=""
cleanup() {
  if [ -n "$emulator_pid" ]; then kill -TERM "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$out"
DPS_GROUP_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')
DPS_ID_SCOPE=0ne00JUDGE1
cat > "$work/emulator.toml" <<TOML
id_scope = "$DPS_ID_SCOPE"
hubs = ["hub-a.azure-devices.net"]
retry_after_seconds = 3
assign_delay_ms = 2000
[[enrollment_groups]]
name = "client-under-test"
primary_key = "$DPS_GROUP_KEY"
[faults]
seed = 1
${FAULTS:-}
TOML
"$bin" emulator --config "$work/emulator.toml" --listen "$listen" --ca-out "$out/ca.pem" \
  --client-report "$out/clients" --exit-after "$connections" --force >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/emulator.out" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$work/emulator.out" || { echo "judge-client: the emulator did not start" >&2; cat "$work/emulator.err" >&2; exit 2; }
DPS_HOST=127.0.0.1
DPS_PORT=$(grep -o '127.0.0.1:[0-9]*' "$work/emulator.out" | head -1 | cut -d: -f2)
DPS_CA="$(cd "$out" && pwd)/ca.pem"
export DPS_HOST DPS_PORT DPS_ID_SCOPE DPS_CA DPS_GROUP_KEY
if [ -n "${CLIENT_COMMAND:-}" ]; then
  bash -c "$CLIENT_COMMAND" || echo "judge-client: the client exited with status $?" >&2
else
  cat > "$work/client.toml" <<TOML
name = "judged-client"
[target]
kind = "dps"
host = "$DPS_HOST"
port = $DPS_PORT
id_scope = "$DPS_ID_SCOPE"
ca_certificate = "$DPS_CA"
server_name = "localhost"
[devices]
count = $connections
registration_id = "judged-{index:04}"
group_key_env = "DPS_GROUP_KEY"
[arrival]
rate = 10
TOML
  "$bin" run "$work/client.toml" --out "$work/run" --quiet >/dev/null || true
fi
status=0
for _ in $(seq "$((timeout * 10))"); do kill -0 "$emulator_pid" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$emulator_pid" 2>/dev/null || true
wait "$emulator_pid" || status=$?
emulator_pid=""
grep "client checks" "$work/emulator.err" >&2 || true
exit "$status"
