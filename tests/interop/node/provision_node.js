#!/usr/bin/env node
// Interop check: provision devices against a DPS endpoint with the official Node SDK
// (azure-iot-provisioning-device with its MQTT or MQTT-over-WebSocket transport, pinned in
// package.json). The enrollment-group key comes from the environment variable DPS_GROUP_KEY only;
// neither it nor the derived keys are printed. Trust the emulator's CA with NODE_EXTRA_CA_CERTS.
//
// Usage: provision_node.js --host localhost --id-scope S --count N --prefix P [--websockets]
// Prints `ok <regid> <hub> <device_id>` or `FAIL <regid> <reason>` per device, then
// `N passed, M failed`; exit 0 only if all passed (2 on usage errors). The SDK always connects to
// port 8883 (MQTT) or 443 (WebSocket).
'use strict';

const crypto = require('crypto');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt, MqttWs } = require('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');

function parse(argv) {
  const args = { host: 'localhost', count: 3, prefix: 'nodesdk', websockets: false, timeout: 60 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--websockets') args.websockets = true;
    else if (['--host', '--id-scope', '--count', '--prefix', '--timeout'].includes(flag) && i + 1 < argv.length) {
      args[flag.slice(2).replace('-', '_')] = argv[++i];
    } else {
      console.error(`error: unknown argument ${flag}`);
      process.exit(2);
    }
  }
  args.count = Number(args.count);
  args.timeout = Number(args.timeout);
  if (!args.id_scope || !(args.count > 0)) {
    console.error('error: --id-scope and a positive --count are required');
    process.exit(2);
  }
  return args;
}

function deriveKey(groupKey, registrationId) {
  return crypto.createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId, 'utf8').digest('base64');
}

function registerOne(args, groupKey, registrationId) {
  return new Promise((resolve) => {
    const transport = args.websockets ? new MqttWs() : new Mqtt();
    const security = new SymmetricKeySecurityClient(registrationId, deriveKey(groupKey, registrationId));
    const client = ProvisioningDeviceClient.create(args.host, args.id_scope, transport, security);
    const timer = setTimeout(() => resolve([false, `timeout after ${args.timeout}s`]), args.timeout * 1000);
    client.register((err, result) => {
      clearTimeout(timer);
      if (err) return resolve([false, `${err.name || 'Error'}: ${err.message || err}`.replace(/\s+/g, ' ')]);
      if (!result || result.status !== 'assigned') return resolve([false, `status=${result && result.status}`]);
      if (result.deviceId !== registrationId) return resolve([false, `deviceId=${result.deviceId}`]);
      resolve([true, `${result.assignedHub} ${result.deviceId}`]);
    });
  });
}

async function main() {
  const args = parse(process.argv.slice(2));
  const groupKey = (process.env.DPS_GROUP_KEY || '').trim();
  if (!groupKey) {
    console.error('error: environment variable DPS_GROUP_KEY is not set');
    process.exit(2);
  }
  const ids = Array.from({ length: args.count }, (_, i) => `${args.prefix}-${String(i).padStart(3, '0')}`);
  const results = await Promise.all(ids.map((id) => registerOne(args, groupKey, id)));
  let passed = 0;
  results.forEach(([ok, text], i) => {
    if (ok) passed++;
    const safe = text.includes('SharedAccessSignature') || text.includes('sig=') ? '<reason redacted>' : text;
    console.log(`${ok ? 'ok' : 'FAIL'} ${ids[i]} ${safe}`);
  });
  console.log(`${passed} passed, ${ids.length - passed} failed`);
  process.exit(passed === ids.length ? 0 : 1);
}

main();
