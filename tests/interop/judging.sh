# Shared by the SDK interop scripts (sourced, not run): a work folder and a group key, a judging
# emulator on the SDKs' fixed ports (stopped and the folder removed on exit), and the check of
# its client report. Needs $bin set.

work=$(mktemp -d)
emulator_pid=""
cleanup() {
  if [ -n "$emulator_pid" ]; then kill -TERM "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
group_key=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')

# emulator_config RETRY_AFTER: the emulator's configuration: a symmetric-key group, and an X.509
# group when $work/x509 holds a CA (`dpsbench certs`).
emulator_config() {
  cat > "$work/emulator.toml" <<TOML
id_scope = "0ne00PYSDK1"
hubs = ["hub-a.azure-devices.net", "hub-b.azure-devices.net"]
retry_after_seconds = $1
assign_delay_ms = 300
[[enrollment_groups]]
name = "sdk"
primary_key = "$group_key"
TOML
  if [ -f "$work/x509/root.pem" ]; then
    printf '[[enrollment_groups]]\nname = "sdk-x509"\nca_certificate = "%s"\n' "$work/x509/root.pem" >> "$work/emulator.toml"
  fi
}

# start_emulator REPORT_DIR DETAIL_ID: the SDKs always use port 8883 for MQTT and 443 for MQTT
# over WebSocket; DETAIL_ID is a client whose every connection the report details.
start_emulator() {
  "$bin" emulator --config "$work/emulator.toml" --listen 127.0.0.1:8883 --ws-listen 127.0.0.1:443 \
    --ca-out "$work/ca.pem" --client-report "$1" --client-detail "$2" --force \
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

