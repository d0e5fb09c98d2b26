"""A device written outside dpsbench that asks DPS for an operational certificate at registration
(api-version 2025-07-01-preview): its key and CSR made with the `cryptography` package, MQTT
spoken with paho-mqtt directly (no Azure SDK supports the preview), the chain it gets checked
against the issuing CA's certificate (`dpsbench emulator --issuer-ca-out`).

Usage: issuance_client.py --host H --port P --ca CA.pem --issuer ISSUER.pem --id-scope S
       --prefix P --count N   (the group key in DPS_GROUP_KEY)

Prints `ok <registration id> <hub> <chain length>` per device and `N passed, N failed` last;
exits 1 when any device failed.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

API_VERSION = "2025-07-01-preview"


def device_key(group_key: str, registration_id: str) -> bytes:
    """DPS's group enrollment derivation: HMAC-SHA256(group key, registration ID)."""
    return base64.b64encode(hmac.new(base64.b64decode(group_key), registration_id.encode(), hashlib.sha256).digest())


def sas_token(id_scope: str, registration_id: str, key: bytes, valid_for: int = 3600) -> str:
    resource = urllib.parse.quote(f"{id_scope}/registrations/{registration_id}", safe="")
    expiry = int(time.time()) + valid_for
    signed = hmac.new(base64.b64decode(key), f"{resource}\n{expiry}".encode(), hashlib.sha256).digest()
    signature = urllib.parse.quote(base64.b64encode(signed).decode(), safe="")
    return f"SharedAccessSignature sr={resource}&sig={signature}&se={expiry}&skn=registration"


def make_csr(registration_id: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, registration_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return key, csr


def provision(args, registration_id: str, group_key: str):
    """Registers with a CSR and polls until a final status; returns the final JSON."""
    key, csr = make_csr(registration_id)
    csr_b64 = base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()
    replies = []
    arrived = threading.Condition()
    client = mqtt.Client(client_id=registration_id, clean_session=True, protocol=mqtt.MQTTv311)
    client.username_pw_set(
        f"{args.id_scope}/registrations/{registration_id}/api-version={API_VERSION}",
        sas_token(args.id_scope, registration_id, device_key(group_key, registration_id)),
    )
    context = ssl.create_default_context(cafile=args.ca)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    client.tls_set_context(context)

    def on_message(_client, _userdata, message):
        with arrived:
            replies.append((message.topic, message.payload))
            arrived.notify_all()

    def next_reply(deadline):
        with arrived:
            while not replies:
                left = deadline - time.monotonic()
                if left <= 0 or not arrived.wait(left):
                    raise TimeoutError("no reply from DPS")
            return replies.pop(0)

    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=60)
    client.loop_start()
    deadline = time.monotonic() + args.timeout
    try:
        client.subscribe("$dps/registrations/res/#", qos=1)
        body = json.dumps({"registrationId": registration_id, "csr": csr_b64})
        client.publish("$dps/registrations/PUT/iotdps-register/?$rid=1", body, qos=1)
        rid = 1
        while True:
            topic, payload = next_reply(deadline)
            status = int(topic.split("/")[3])
            if status >= 300:
                raise RuntimeError(f"{topic}: {payload!r}")
            operation = json.loads(payload)
            if operation["status"] != "assigning":
                return key, csr, operation
            query = urllib.parse.parse_qs(topic.split("?", 1)[1])
            time.sleep(int(query.get("retry-after", ["1"])[0]))
            rid += 1
            client.publish(
                f"$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}"
                f"&operationId={operation['operationId']}",
                "",
                qos=1,
            )
    finally:
        client.disconnect()
        client.loop_stop()


def check_chain(state, key, registration_id: str, issuer: x509.Certificate):
    """The chain: base64 DER, leaf first; the leaf holds the CSR's key, names the device, is
    valid now and is signed by the next certificate, the last by (or being) the issuing CA."""
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in state["issuedCertificateChain"]]
    leaf = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if leaf.public_key().public_bytes(encoding, public) != key.public_key().public_bytes(encoding, public):
        raise ValueError("the leaf's key is not the CSR's")
    common_name = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    if common_name.lower() != registration_id.lower():
        raise ValueError(f"leaf CN {common_name!r} is not {registration_id!r}")
    now = datetime.datetime.now(datetime.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise ValueError("the leaf is not valid now")
    for child, parent in zip(chain, chain[1:]):
        child.verify_directly_issued_by(parent)
    if chain[-1] != issuer:
        chain[-1].verify_directly_issued_by(issuer)
    return len(chain)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="the emulator's --ca-out")
    parser.add_argument("--issuer", required=True, help="the emulator's --issuer-ca-out")
    parser.add_argument("--id-scope", required=True)
    parser.add_argument("--prefix", default="py-issue")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    group_key = os.environ["DPS_GROUP_KEY"]
    with open(args.issuer, "rb") as file:
        issuer = x509.load_pem_x509_certificate(file.read())
    passed = failed = 0
    for index in range(args.count):
        registration_id = f"{args.prefix}-{index:03}"
        try:
            key, _csr, operation = provision(args, registration_id, group_key)
            if operation["status"] != "assigned":
                raise RuntimeError(f"status {operation['status']}: {operation.get('registrationState')}")
            state = operation["registrationState"]
            length = check_chain(state, key, registration_id, issuer)
            print(f"ok {registration_id} {state['assignedHub']} {length}")
            passed += 1
        except Exception as error:  # noqa: BLE001 - every failure is reported and counted
            print(f"FAIL {registration_id}: {error}")
            failed += 1
    print(f"issuance: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
