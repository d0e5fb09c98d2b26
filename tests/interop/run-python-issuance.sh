#!/usr/bin/env bash
# Certificate issuance from outside the harness: a hand-written Python device
# (tests/interop/issuance_client.py: its CSR from the `cryptography` package, raw MQTT through
# paho-mqtt, as no Azure SDK release speaks api-version 2025-07-01-preview) registers with a CSR
# against `dpsbench emulator` and checks the chain it gets against --issuer-ca-out.
#
# The emulator listens on a free loopback port (127.0.0.1:0), so no fixed port is bound.
# Installs the pinned packages into target/issuance-venv on first use (needs PyPI).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/target/issuance-venv"
bin="${DPSBENCH_BIN:-$root/target/debug/dpsbench}"
count="${ISSUANCE_DEVICES:-5}"

if ! "$venv/bin/python" -c "import cryptography, paho.mqtt" 2>/dev/null; then
  echo "issuance: installing cryptography and paho-mqtt into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/interop/requirements-issuance.txt"
fi
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)

work=$(mktemp -d)
emulator_pid=
cleanup() {
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
group_key=$("$venv/bin/python" -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')
cat > "$work/emulator.toml" <<TOML
id_scope = "0ne00PYISS1"
hubs = ["hub-a.azure-devices.net"]
retry_after_seconds = 1
assign_delay_ms = 100
issue_delay_ms = [5, 20]
[[enrollment_groups]]
name = "issuing"
primary_key = "$group_key"
issue_certificates = { validity_days = 30 }
TOML
"$bin" emulator --config "$work/emulator.toml" --listen 127.0.0.1:0 --ca-out "$work/ca.pem" \
  --issuer-ca-out "$work/issuer.pem" >"$work/emulator.out" 2>"$work/emulator.log" &
emulator_pid=$!
port=
for _ in $(seq 100); do
  port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$work/emulator.out" 2>/dev/null | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  kill -0 "$emulator_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { echo "issuance: FAIL the emulator did not start" >&2; cat "$work/emulator.log" >&2; exit 1; }

echo "issuance: $count devices from a hand-written Python client, CSR in the register body"
DPS_GROUP_KEY="$group_key" "$venv/bin/python" "$root/tests/interop/issuance_client.py" \
  --host localhost --port "$port" --ca "$work/ca.pem" --issuer "$work/issuer.pem" \
  --id-scope 0ne00PYISS1 --count "$count" --prefix py-issue


# The control: the same chain checked against another CA (the server's) must fail, so the check
# above is one that can.
echo "issuance: control: one device whose chain is checked against the server's CA instead"
if DPS_GROUP_KEY="$group_key" "$venv/bin/python" "$root/tests/interop/issuance_client.py" \
  --host localhost --port "$port" --ca "$work/ca.pem" --issuer "$work/ca.pem" \
  --id-scope 0ne00PYISS1 --count 1 --prefix py-control >"$work/control.txt"; then
  echo "issuance: FAIL the chain verified against a CA that did not issue it" >&2
  cat "$work/control.txt" >&2
  exit 1
fi
grep -q '^FAIL py-control-000' "$work/control.txt"
echo "issuance: control failed as it must"
