"""Validates Kubernetes manifests against the API schemas offline (the kubernetes-validate
package bundles them), strictly: unknown fields are errors.

    validate_k8s.py --version 1.30.0 FILE...      each YAML document of each file
    validate_k8s.py --version 1.30.0 --rendered - kustomize output on stdin, plus the shards'
                                                  N checked: completions = parallelism = every
                                                  SHARD_COUNT

Prints one line per document; exits 1 when any is invalid.
"""
import sys

import kubernetes_validate
import yaml


def documents(args):
    if args == ["-"]:
        yield from (("<stdin>", d) for d in yaml.safe_load_all(sys.stdin) if d)
        return
    for path in args:
        with open(path) as f:
            yield from ((path, d) for d in yaml.safe_load_all(f) if d)


def shard_count_problems(docs):
    jobs = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == "Job"}
    shards = jobs.get("dpsbench-shards")
    if shards is None:
        return ["no Job dpsbench-shards"]
    spec = shards["spec"]
    n = spec.get("completions")
    problems = []
    if spec.get("completionMode") != "Indexed":
        problems.append("dpsbench-shards is not an Indexed Job")
    if spec.get("parallelism") != n:
        problems.append(f"dpsbench-shards: parallelism {spec.get('parallelism')} is not completions {n}")
    for job in jobs.values():
        for container in job["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if env["name"] == "SHARD_COUNT" and env.get("value") != str(n):
                    problems.append(f"{job['metadata']['name']}: SHARD_COUNT {env.get('value')!r} is not {n}")
                if env["name"] == "DPS_GROUP_KEY" and "valueFrom" not in env:
                    problems.append(f"{job['metadata']['name']}: DPS_GROUP_KEY is not from a Secret")
            if any("DPS_GROUP_KEY" in str(a) for a in container.get("args", []) + container.get("command", [])):
                problems.append(f"{job['metadata']['name']}: the group key is in the arguments")
    return problems


def main(argv):
    version = argv[argv.index("--version") + 1]
    rendered = "--rendered" in argv
    files = [a for i, a in enumerate(argv) if a not in ("--version", "--rendered") and argv[i - 1] != "--version"]
    docs = list(documents(files))
    failed = False
    for origin, doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            print(f"ok: {origin}: {name} (Kubernetes {version})")
        except kubernetes_validate.ValidationError as error:
            failed = True
            path = "/".join(str(p) for p in error.path)
            print(f"INVALID: {origin}: {name}: {path}: {error.message}")
    if rendered:
        for problem in shard_count_problems(docs):
            failed = True
            print(f"INVALID: {problem}")
    if not docs:
        print("no documents")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
