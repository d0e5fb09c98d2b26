#!/usr/bin/env bash
# Node SDK interop test: Microsoft's azure-iot-provisioning-device (MQTT and MQTT over WebSocket
# transports) provisions devices of a symmetric-key enrollment group against `dpsbench emulator`,
# unchanged, trusting only the emulator's CA (NODE_EXTRA_CA_CERTS). The emulator judges the SDK as
# a client (--client-report): the SDK must pass every must-check; the should-checks it breaks are
# pinned below.
#
# The SDK always connects to port 8883 (MQTT) or 443 (WebSocket), so the emulator listens on
# 127.0.0.1:8883 and 127.0.0.1:443 (loopback only; 443 needs root or CAP_NET_BIND_SERVICE).
# Installs the pinned SDK into target/interop-node on first use (needs the npm registry).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
modules="$root/target/interop-node"
bin="${DPSBENCH_BIN:-$root/target/debug/dpsbench}"
count="${INTEROP_DEVICES:-12}"

if [ ! -d "$modules/node_modules/azure-iot-provisioning-device-mqtt" ]; then
  echo "interop: installing the Node SDK into $modules"
  mkdir -p "$modules"
  cp "$root/tests/interop/node/package.json" "$modules/"
  (cd "$modules" && npm install --no-audit --no-fund --silent)
fi
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)

source "$root/tests/interop/judging.sh"
emulator_config 1
start_emulator "$work/clients" nodesdk-000

provision() {
  DPS_GROUP_KEY="$group_key" NODE_EXTRA_CA_CERTS="$work/ca.pem" NODE_PATH="$modules/node_modules" \
    node "$root/tests/interop/node/provision_node.js" --id-scope 0ne00PYSDK1 --host localhost "$@"
}

failed=0
echo "interop: $count devices through the Node SDK over MQTT"
provision --count "$count" --prefix nodesdk | tee "$work/mqtt.txt" || failed=1
echo "interop: $count more devices through the Node SDK over MQTT over WebSocket (wss, port 443)"
provision --count "$count" --prefix nodesdk-ws --websockets | tee "$work/websocket.txt" || failed=1

# The SDK as a client: every must-check passes.
stop_emulator
client_checks "$work/clients" 0 "$emulator_status" || failed=1
exit "$failed"
