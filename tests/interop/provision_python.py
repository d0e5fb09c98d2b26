#!/usr/bin/env python3
"""Interop check: provision devices against a DPS endpoint with the official Python SDK.

Provisions ``--count`` devices of a symmetric-key enrollment group through
``azure.iot.device.ProvisioningDeviceClient`` (azure-iot-device, pinned in
requirements.txt) and checks every result.

The enrollment-group key is read from the environment variable DPS_GROUP_KEY
only. Neither it nor the derived device keys nor SAS tokens are ever printed.

Output: one line per device, either
    ok <regid> <assigned_hub> <device_id>
    FAIL <regid> <reason>
followed by exactly one summary line ``N passed, M failed``.
Exit status: 0 if every device passed, 1 if any failed, 2 on usage errors.

Note: the SDK always connects to port 8883 (MQTT/TLS) or, with --websockets,
port 443 (path /$iothub/websocket); the port cannot be configured.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import os
import sys
import threading
import time

GROUP_KEY_ENV = "DPS_GROUP_KEY"

# Offline self-test vector (see --self-test).
_TEST_GROUP_KEY = (
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
)
_TEST_REGISTRATION_ID = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
_TEST_DEVICE_KEY = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="


def derive_device_key(group_key_b64, registration_id):
    """base64(HMAC-SHA256(key=base64decode(group_key), msg=utf8(registration_id)))."""
    key = base64.b64decode(group_key_b64, validate=True)
    digest = hmac.new(key, registration_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _positive_float(text):
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Provision N devices of a symmetric-key enrollment group via the "
        "official azure-iot-device Python SDK. Group key is read from $" + GROUP_KEY_ENV + ".",
    )
    p.add_argument("--host", default="localhost", help="provisioning host (default: localhost)")
    p.add_argument("--id-scope", help="DPS ID scope")
    p.add_argument("--ca", metavar="PEM_PATH", help="PEM file with the CA certificate(s) to trust")
    p.add_argument("--count", type=_positive_int, default=3, help="number of devices (default: 3)")
    p.add_argument(
        "--prefix", default="pysdk", help="registration ids are {prefix}-{i:03} (default: pysdk)"
    )
    p.add_argument(
        "--expect-hubs",
        help="comma-separated list of acceptable assigned hubs, e.g. hub-a,hub-b",
    )
    p.add_argument(
        "--websockets",
        action="store_true",
        help="MQTT over WebSockets (SDK uses port 443, path /$iothub/websocket)",
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        help="registrations in flight at once (default: 4)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        help="per-device timeout in seconds (default: 60)",
    )
    p.add_argument(
        "--x509-dir",
        metavar="DIR",
        help="X.509 attestation: each device presents DIR/{regid}.pem (its chain) and DIR/{regid}.key "
        "(as `dpsbench certs` writes them) instead of a SAS token; no group key is needed",
    )
    p.add_argument(
        "--self-test",
        action="store_true",
        help="only verify the key-derivation test vector offline, then exit",
    )
    args = p.parse_args(argv)
    if args.self_test:
        return args
    missing = [
        flag
        for flag, value in (("--id-scope", args.id_scope), ("--ca", args.ca), ("--expect-hubs", args.expect_hubs))
        if not value
    ]
    if missing:
        p.error("the following arguments are required: " + ", ".join(missing))
    args.expected_hubs = [h.strip() for h in args.expect_hubs.split(",") if h.strip()]
    if not args.expected_hubs:
        p.error("--expect-hubs must name at least one hub")
    return args


def self_test():
    got = derive_device_key(_TEST_GROUP_KEY, _TEST_REGISTRATION_ID)
    if got != _TEST_DEVICE_KEY:
        print("FAIL self-test key derivation mismatch")
        return 1
    print("ok self-test key derivation")
    return 0


class _Redactor(object):
    """Removes secrets from text that is about to be printed."""

    def __init__(self, secrets):
        self._secrets = [s for s in secrets if s]

    def add(self, secret):
        if secret:
            self._secrets.append(secret)

    def __call__(self, text):
        for s in self._secrets:
            text = text.replace(s, "<redacted>")
        # Belt and braces: never let anything token-shaped through.
        if "SharedAccessSignature" in text or "sig=" in text:
            return "<reason redacted: contained credential material>"
        return text


def _describe_exception(exc):
    parts = []
    seen = set()
    while exc is not None and id(exc) not in seen and len(parts) < 5:
        seen.add(id(exc))
        msg = str(exc).strip()
        parts.append(type(exc).__name__ + (": " + msg if msg else ""))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def _single_line(text):
    return " ".join(text.split())


def register_one(args, ca_pem, group_key, registration_id):
    """Runs one registration. Returns (ok: bool, text) where text is the rest of the line."""
    from azure.iot.device import ProvisioningDeviceClient

    kwargs = {"server_verification_cert": ca_pem}
    if args.websockets:
        kwargs["websockets"] = True
    if args.x509_dir:
        from azure.iot.device import X509

        certificate = X509(
            cert_file=os.path.join(args.x509_dir, registration_id + ".pem"),
            key_file=os.path.join(args.x509_dir, registration_id + ".key"),
        )
        client = ProvisioningDeviceClient.create_from_x509_certificate(
            provisioning_host=args.host,
            registration_id=registration_id,
            id_scope=args.id_scope,
            x509=certificate,
            **kwargs
        )
    else:
        client = ProvisioningDeviceClient.create_from_symmetric_key(
            provisioning_host=args.host,
            registration_id=registration_id,
            id_scope=args.id_scope,
            symmetric_key=derive_device_key(group_key, registration_id),
            **kwargs
        )
    result = client.register()
    if result is None:
        return False, "register() returned None"
    status = result.status
    state = result.registration_state
    if status != "assigned":
        return False, "status={!r} (expected 'assigned')".format(status)
    if state is None:
        return False, "status=assigned but no registrationState"
    hub = state.assigned_hub
    device_id = state.device_id
    problems = []
    if hub not in args.expected_hubs:
        problems.append("assigned_hub={!r} not in {}".format(hub, ",".join(args.expected_hubs)))
    if device_id != registration_id:
        problems.append("device_id={!r} != registration id".format(device_id))
    if problems:
        return False, "; ".join(problems)
    return True, "{} {}".format(hub, device_id)


def main(argv=None):
    args = parse_args(argv)
    if args.self_test:
        return self_test()

    group_key = os.environ.get(GROUP_KEY_ENV, "").strip()
    if args.x509_dir:
        group_key = None
    elif not group_key:
        print("error: environment variable {} is not set".format(GROUP_KEY_ENV), file=sys.stderr)
        return 2
    try:
        if group_key is not None:
            base64.b64decode(group_key, validate=True)
    except (binascii.Error, ValueError):
        print("error: {} is not valid base64".format(GROUP_KEY_ENV), file=sys.stderr)
        return 2
    try:
        with open(args.ca, "r", encoding="ascii") as f:
            ca_pem = f.read()
    except (OSError, UnicodeDecodeError) as e:
        print("error: cannot read --ca {}: {}".format(args.ca, e), file=sys.stderr)
        return 2
    if "-----BEGIN CERTIFICATE-----" not in ca_pem:
        print("error: --ca {} contains no PEM certificate".format(args.ca), file=sys.stderr)
        return 2

    try:
        import azure.iot.device  # noqa: F401  (fail early with a clear message)
    except ImportError as e:
        print("error: azure-iot-device is not installed ({})".format(e), file=sys.stderr)
        return 2

    redact = _Redactor([group_key])
    reg_ids = ["{}-{:03}".format(args.prefix, i) for i in range(args.count)]
    for rid in reg_ids:
        if group_key is not None:
            redact.add(derive_device_key(group_key, rid))

    out_lock = threading.Lock()
    slots = threading.BoundedSemaphore(args.concurrency)
    counts = {"passed": 0, "failed": 0}

    def report(ok, rid, text):
        line = "{} {} {}".format("ok" if ok else "FAIL", rid, _single_line(redact(text)))
        with out_lock:
            counts["passed" if ok else "failed"] += 1
            print(line, flush=True)

    def attempt(rid, box):
        try:
            box["result"] = register_one(args, ca_pem, group_key, rid)
        except BaseException as e:  # noqa: B902 - report anything, never crash the run
            box["result"] = (False, _describe_exception(e))

    def supervise(rid):
        try:
            box = {}
            worker = threading.Thread(target=attempt, args=(rid, box), daemon=True)
            started = time.monotonic()
            worker.start()
            worker.join(args.timeout)
            if worker.is_alive():
                report(False, rid, "timeout after {:.0f}s".format(time.monotonic() - started))
            else:
                ok, text = box.get("result", (False, "no result"))
                report(ok, rid, text)
        finally:
            slots.release()

    supervisors = []
    for rid in reg_ids:
        slots.acquire()
        t = threading.Thread(target=supervise, args=(rid,), daemon=True)
        t.start()
        supervisors.append(t)
    for t in supervisors:
        t.join()

    with out_lock:
        print("{} passed, {} failed".format(counts["passed"], counts["failed"]), flush=True)
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Hard exit: a timed-out registration leaves SDK/paho threads (including the SDK's
    # shared, non-daemon pipeline executor) that would otherwise block interpreter exit.
    os._exit(code)
