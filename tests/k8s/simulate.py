"""A simulated run of deploy/k8s's Indexed Job, as containers on one machine (scripts/k8s-sim).

1. An emulator container stands in for DPS: `dpsbench emulator` from the image, with no network
   but its own loopback, listening on 127.0.0.1:8883 there.
2. deploy/k8s is copied and given what a user sets before `kubectl apply -k` (README, steps 1-4):
   the image, N, START_AT and RUN_ID in kustomization.yaml, the plan in scenario.toml (the
   deployed scenario with tests/k8s/smoke.toml's fields over it, plus the emulator's CA), and
   the Secret made from a key file as `kubectl create secret generic --from-file` makes it.
3. kustomize renders it (`kubectl kustomize`, the renderer `kubectl apply -k` uses), and every
   pod of both Jobs is run from the rendered manifests: image, command, args, environment,
   security context and resource limits as tests/k8s/pods.py resolves them, the scenario
   ConfigMap and the reports claim as bind mounts, and the network namespace of the emulator
   (pods reach "DPS" at 127.0.0.1; nothing leaves the machine, no host port is used).
4. The shard pods and the merge pod start together, as `kubectl apply` starts both Jobs; then
   the merged report must hold the whole plan, merge exactly, and render in headless Chromium.

Exit 0 when every check holds, 1 when one fails (each is printed), 2 for bad input.
"""

import argparse
import base64
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

import pods

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "tests/k8s/smoke.toml"
# Pods are created, started and prepare their devices before this many seconds have passed.
START_LEAD_SECONDS = 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", default="dpsbench:local")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--manifests", type=Path, default=ROOT / "deploy/k8s")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (its path is printed)")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dpsbench-k8s-sim-"))
    run = f"dpsbench-sim-{os.getpid()}"
    try:
        failures = simulate(options, work, run)
    except (pods.Unsupported, RuntimeError) as error:
        failures = [str(error)]
    finally:
        subprocess.run(["docker", "rm", "-f", *containers(run)], capture_output=True)
        if options.keep:
            print(f"k8s-sim: working folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        print(f"k8s-sim: FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def simulate(options, work, run):
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    smoke = tomllib.loads(SMOKE.read_text())
    emulator = start_emulator(options.image, work, run, key, smoke["target"])
    scenario = kustomization(options, work, run, smoke)
    rendered = render(work / "kustomize") + secret(work, key)
    resources = {(r["kind"], r["metadata"]["name"]): r for r in rendered}
    jobs = [r for r in rendered if r["kind"] == "Job"]
    started = []
    for job in jobs:
        for pod in pods.indexed_pods(job):
            started.append((job["metadata"]["name"], pod, start_pod(pod, resources, work, run, emulator)))
    print(f"k8s-sim: {len(started)} pods started from {len(jobs)} Jobs", file=sys.stderr)
    # The shards end by the plan's limit; the merge, a few seconds after the last summary
    # (it looks every 10 s). A merge still waiting then waits for a shard that wrote nothing.
    deadline = time.monotonic() + START_LEAD_SECONDS + scenario["run"]["max_duration_seconds"] + 60
    exits = {name: wait(name, deadline) for job, _, name in started if job != "dpsbench-merge"}
    deadline = time.monotonic() + 60
    exits.update({name: wait(name, deadline) for job, _, name in started if job == "dpsbench-merge"})
    for _, _, name in started:
        log = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        (work / f"{name}.log").write_text(log.stdout + log.stderr)
        ended = "still ran at the deadline: stopped" if exits[name] is None else f"exited {exits[name]}"
        print(f"k8s-sim: {name} {ended}", file=sys.stderr)
        if exits[name] != 0:
            print("".join(f"  | {line}\n" for line in (log.stdout + log.stderr).splitlines()[-15:]), file=sys.stderr)
    failures = [
        f"pod {name} " + ("still ran at the deadline" if code is None else f"exited {code}")
        for name, code in exits.items()
        if code != 0
    ]
    if not failures:
        run_id = resources_literal(resources, "RUN_ID")
        failures += check_report(work / "volumes/dpsbench-reports" / run_id, scenario, options.shards, resources)
    return failures


def containers(run):
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=dpsbench-sim={run}"], capture_output=True, text=True
    )
    return listed.stdout.split()


def docker(*args):
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ...: {result.stderr.strip()}")
    return result.stdout.strip()


def start_emulator(image, work, run, key, target):
    """The emulator container: DPS's stand-in, on the loopback of its own network namespace, at
    the smoke scenario's target."""
    config = work / "emulator"
    (config / "ca").mkdir(parents=True)
    (config / "emulator.toml").write_text(
        f'id_scope = "{target["id_scope"]}"\nhubs = ["hub-a.azure-devices.net", "hub-b.azure-devices.net"]\n'
        "retry_after_seconds = 1\nassign_delay_ms = 50\n"
        f'[[enrollment_groups]]\nname = "k8s-sim"\nprimary_key = "{key}"\n'
    )
    for path in (config, config / "ca", config / "emulator.toml"):
        os.chown(path, 10001, 10001)
    os.chmod(config / "emulator.toml", 0o600)
    name = f"{run}-dps"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--label",
        f"dpsbench-sim={run}",
        "--network",
        "none",
        "--read-only",
        "--user",
        "10001:10001",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--mount",
        f"type=bind,src={config},dst=/emulator",
        image,
        "emulator",
        "--config",
        "/emulator/emulator.toml",
        "--listen",
        f"{target['host']}:{target['port']}",
        "--ca-out",
        "/emulator/ca/ca.pem",
    )
    for _ in range(100):
        if f"{target['host']}:" in subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout:
            return name
        time.sleep(0.2)
    raise RuntimeError(f"the emulator container did not report its address: {docker('logs', name)}")


def kustomization(options, work, run, smoke):
    """A copy of deploy/k8s with what a user sets before applying it; returns the scenario."""
    target = work / "kustomize"
    shutil.copytree(options.manifests, target)
    path = target / "kustomization.yaml"
    document = yaml.safe_load(path.read_text())
    repository, tag = options.image.rsplit(":", 1)
    document["images"] = [{"name": "dpsbench", "newName": repository, "newTag": tag}]
    for patch in document["patches"]:
        operations = yaml.safe_load(patch["patch"])
        for operation in operations:
            if patch["target"]["name"] == "dpsbench-shards" and operation["path"] == "/spec/completions":
                operation["value"] = options.shards
        patch["patch"] = yaml.safe_dump(operations)
    start_at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=START_LEAD_SECONDS)
    literals = {"START_AT": start_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "RUN_ID": run}
    for generator in document["configMapGenerator"]:
        if generator["name"] == "dpsbench-run":
            names = [item.split("=", 1)[0] for item in generator["literals"]]
            generator["literals"] = [
                f"{name}={literals[name]}" if name in literals else item
                for name, item in zip(names, generator["literals"])
            ]
        if generator["name"] == "dpsbench-scenario":
            generator["files"].append("ca.pem")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    scenario = tomllib.loads((target / "scenario.toml").read_text())
    for table, fields in smoke.items():
        scenario[table] = {**scenario.get(table, {}), **fields} if table != "target" else fields
    (target / "scenario.toml").write_text(toml_text(scenario))
    shutil.copy(work / "emulator/ca/ca.pem", target / "ca.pem")
    scenario["start_at"] = start_at
    return scenario


def toml_text(document):
    """Top-level keys, then one [table] each (nested tables and lists written inline)."""

    def value(item):
        if isinstance(item, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(v)}" for k, v in item.items()) + " }"
        if isinstance(item, list):
            return "[" + ", ".join(value(v) for v in item) + "]"
        return json.dumps(item) if isinstance(item, (str, bool)) else str(item)

    lines = [f"{k} = {value(v)}" for k, v in document.items() if not isinstance(v, dict)]
    for table, fields in document.items():
        if isinstance(fields, dict):
            lines += ["", f"[{table}]"] + [f"{k} = {value(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def render(directory):
    result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise pods.Unsupported(f"kubectl kustomize failed: {result.stderr.strip()}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def secret(work, key):
    """The group key's Secret, made from a file as the README says (README, step 4)."""
    key_file = work / "group-key.txt"
    key_file.write_text(key)
    os.chmod(key_file, 0o600)
    result = subprocess.run(
        [
            "kubectl",
            "-n",
            "dpsbench",
            "create",
            "secret",
            "generic",
            "dpsbench-group-key",
            f"--from-file=DPS_GROUP_KEY={key_file}",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [yaml.safe_load(result.stdout)]


def resources_literal(resources, key):
    for (kind, name), resource in resources.items():
        if kind == "ConfigMap" and name.startswith("dpsbench-run") and key in resource.get("data", {}):
            return resource["data"][key]
    raise pods.Unsupported(f"no dpsbench-run ConfigMap with {key}")


def start_pod(pod, resources, work, run, emulator):
    """One pod as one container, detached; returns the container's name."""
    image, flags, entrypoint, arguments, env, mounts = pods.container_run(pod, resources)
    name = f"{run}-{pod['metadata']['name']}"
    env_file = work / f"{name}.env"
    if any("\n" in v for v in env.values()):
        raise pods.Unsupported(f"{name}: an environment value with a newline is not simulated")
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    os.chmod(env_file, 0o600)
    context = pod["spec"].get("securityContext", {})
    for sysctl in context.get("sysctls", []):
        # The pods share the emulator's network namespace: its sysctls are theirs.
        pid = docker("inspect", "-f", "{{.State.Pid}}", emulator)
        subprocess.run(
            ["nsenter", "-t", pid, "-n", "sysctl", "-q", "-w", f"{sysctl['name']}={sysctl['value']}"], check=True
        )
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    binds = []
    for volume, mount_path, read_only in mounts:
        source = volume_dir(volumes[volume], resources, work, context.get("fsGroup"))
        binds += ["--mount", f"type=bind,src={source},dst={mount_path}" + (",readonly" if read_only else "")]
    entry = ["--entrypoint", entrypoint] if entrypoint else []
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--label",
        f"dpsbench-sim={run}",
        "--network",
        f"container:{emulator}",
        "--env-file",
        str(env_file),
        *flags,
        *binds,
        *entry,
        image,
        *arguments,
    )
    return name


def volume_dir(volume, resources, work, fs_group):
    """A host folder standing in for a volume: a claim is one folder every pod shares (as a
    ReadWriteMany volume), group-owned by the pod's fsGroup as the kubelet makes it; a ConfigMap
    is its keys as files."""
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        if ("PersistentVolumeClaim", claim) not in resources:
            raise pods.Unsupported(f"volume {volume['name']}: no claim {claim} is rendered")
        path = work / "volumes" / claim
        path.mkdir(parents=True, exist_ok=True)
        if fs_group is not None:
            os.chown(path, 0, fs_group)
            os.chmod(path, 0o2775)
        return path
    if "configMap" in volume:
        found = resources.get(("ConfigMap", volume["configMap"]["name"]))
        if found is None:
            raise pods.Unsupported(f"volume {volume['name']}: no ConfigMap {volume['configMap']['name']}")
        path = work / "configmaps" / volume["configMap"]["name"]
        path.mkdir(parents=True, exist_ok=True)
        for key, text in found.get("data", {}).items():
            (path / key).write_text(text)
            os.chmod(path / key, volume["configMap"].get("defaultMode", 0o644))
        return path
    raise pods.Unsupported(f"volume {volume['name']}: {sorted(set(volume) - {'name'})} is not simulated")


def wait(name, deadline):
    while True:
        state = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).split()
        if state[0] == "exited":
            return int(state[1])
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    subprocess.run(["docker", "kill", name], capture_output=True)
    return None


def check_report(run_dir, scenario, shards, resources):
    """The merged folder holds the whole plan, merged exactly, and its page renders."""
    failures = []

    def check(condition, message):
        if not condition:
            failures.append(message)
        return condition

    merged_dir = run_dir / "merged"
    if not check((merged_dir / "summary.json").is_file(), f"no merged summary.json in {merged_dir}"):
        return failures
    merged = json.loads((merged_dir / "summary.json").read_text())
    count = scenario["devices"]["count"]
    devices = merged["devices"]
    check(devices["total"] == count and devices["assigned"] == count, f"merged devices {devices}, plan {count}")
    check(merged["partial"] is False and merged["merged"]["missing"] == [], f"partial: {merged['merged']}")
    check(merged["validity"]["valid"], f"merged run invalid: {merged['validity']}")
    check(len(merged["merged"]["shards"]) == shards, f"{len(merged['merged']['shards'])} shards merged, {shards} ran")
    start_at = resources_literal(resources, "START_AT")
    hashes = set()
    lags = []
    for index in range(shards):
        shard = json.loads((run_dir / f"shard-{index}/summary.json").read_text())
        hashes.add(shard["shard"]["plan_hash"])
        lags.append(f"{shard['validity']['schedule_lag_p99_us'] / 1000:.0f}")
        check(
            shard["shard"]["index"] == index and shard["shard"]["count"] == shards, f"shard-{index}: {shard['shard']}"
        )
        check(
            parse_instant(shard["shard"]["start_at"]) == parse_instant(start_at),
            f"shard-{index} started at {shard['shard']['start_at']}, START_AT is {start_at}",
        )
        check(shard["devices"]["total"] == math.ceil((count - index) / shards), f"shard-{index}: {shard['devices']}")
    check(len(hashes) == 1, f"the shards ran different plans: {hashes}")
    failures += exact_merge(run_dir, shards)
    ids = [line.split(",")[0] for line in (merged_dir / "devices.csv").read_text().splitlines()[1:]]
    pattern = scenario["devices"]["registration_id"]
    expected = {registration_id(pattern, i) for i in range(count)}
    check(
        len(ids) == count and set(ids) == expected,
        f"devices.csv: {len(ids)} rows, {len(set(ids) & expected)} of the plan",
    )
    owners = {p.stat().st_uid for p in run_dir.rglob("*")}
    check(owners == {10001}, f"files on the reports volume owned by {owners}, the pods run as 10001")
    failures += page_renders(merged_dir / "report.html")
    if not failures:
        print(
            f"k8s-sim: merged {shards} shards: {devices['assigned']}/{count} devices assigned, "
            f"exact histogram sums, report.html drawn; schedule lag p99 per shard {' / '.join(lags)} ms, "
            f"merged {merged['validity']['schedule_lag_p99_us'] / 1000:.0f} ms "
            f"(limit {scenario['run']['max_schedule_lag_p99_ms']} ms, tests/k8s/smoke.toml)",
            file=sys.stderr,
        )
    return failures


def parse_instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def registration_id(pattern, index):
    return re.sub(r"\{index(?::0(\d+))?\}", lambda m: str(index).zfill(int(m.group(1) or 0)), pattern)


def exact_merge(run_dir, shards):
    """Every merged phase histogram is the shards' added value by value, as the Python
    HdrHistogram port reads them."""
    reader = ROOT / "tests/tools/read_hlog.py"

    def decoded(folder):
        output = subprocess.run([sys.executable, reader, folder / "latency.hlog", "--counts"], capture_output=True)
        return json.loads(output.stdout)

    parts = [decoded(run_dir / f"shard-{index}") for index in range(shards)]
    whole = decoded(run_dir / "merged")
    failures = []
    for phase, stats in whole.items():
        added = {}
        for part in parts:
            for value, n in part.get(phase, {}).get("counts", {}).items():
                added[value] = added.get(value, 0) + n
        if stats["counts"] != added:
            failures.append(f"merged {phase} histogram is not the sum of the shards'")
    if "assigned" not in whole:
        failures.append("no assigned phase in the merged latency.hlog")
    return failures


def page_renders(page):
    """report.html in headless Chromium: every chart drawn, nothing logged to the console."""
    browser = next(
        (shutil.which(n) for n in ("chromium-headless-shell", "chromium", "chromium-browser") if shutil.which(n)), None
    )
    if browser is None:
        return ["no headless Chromium to load report.html with (apt-get install chromium-headless-shell)"]
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                "timeout",
                "120",
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                f"file://{page}",
            ],
            capture_output=True,
            text=True,
        )
    # Every chart, the heatmaps (class "chart heatmap") among them.
    figures = str(page.read_text().count('<figure class="chart'))
    charts = re.search(r'data-charts="(\d+)"', result.stdout)
    drawn = re.search(r'data-charts-drawn="(\d+)"', result.stdout)
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    counted = (charts and charts.group(1), drawn and drawn.group(1))
    if result.returncode != 0 or figures == "0" or counted != (figures, figures):
        return [f"report.html did not draw its {figures} charts (counted, drawn: {counted})"]
    if console:
        return [f"report.html logged to the console: {console}"]
    return []


if __name__ == "__main__":
    sys.exit(main())
