"""What Kubernetes would run for a rendered pod template, as `docker run` arguments.

No IO and no engine: given the rendered resources (ConfigMaps, Secrets), a Job's pod template and
the pod's metadata, it resolves each container's environment (values, configMapKeyRef,
secretKeyRef, fieldRef, and $(VAR) references the way the kubelet expands them), its command and
arguments, its security context, its resource limits and its volumes. A field of the pod or the
container that the simulation cannot reproduce is an error, never silently dropped: a manifest
that gains one must teach the simulation first.
"""

import base64
import re

# Fields the simulation does not need to reproduce, each for a reason.
IGNORED_POD_FIELDS = {
    "restartPolicy",  # Never: the simulation runs each pod once
    "securityContext",  # mapped below
    "containers",
    "volumes",
}
IGNORED_CONTAINER_FIELDS = {"name", "image", "imagePullPolicy"}
MAPPED_CONTAINER_FIELDS = {"command", "args", "env", "resources", "securityContext", "volumeMounts"}
POD_SECURITY_FIELDS = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "sysctls"}
CONTAINER_SECURITY_FIELDS = {"allowPrivilegeEscalation", "readOnlyRootFilesystem", "capabilities", "runAsNonRoot"}
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


class Unsupported(Exception):
    """The manifest asks for something the simulation does not reproduce (or Kubernetes refuses)."""


def expand(text, env):
    """$(VAR) references, as the kubelet expands them: a defined variable is replaced, an
    undefined reference stays as written, and $$ is a literal $."""

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, text)


def field_value(path, pod):
    """A downward-API fieldRef of the pod's metadata."""
    metadata = pod["metadata"]
    simple = {"metadata.name": metadata["name"], "metadata.namespace": metadata["namespace"]}
    if path in simple:
        return simple[path]
    match = re.fullmatch(r"metadata\.(annotations|labels)\['([^']+)'\]", path)
    if match and match.group(2) in metadata.get(match.group(1), {}):
        return metadata[match.group(1)][match.group(2)]
    raise Unsupported(f"fieldRef {path}: the pod has no such field")


def environment(container, pod, resources):
    """The container's environment in order, each value resolved as the kubelet does."""
    env = {}
    for entry in container.get("env", []):
        name = entry["name"]
        if "value" in entry:
            env[name] = expand(entry["value"], env)
            continue
        source = entry.get("valueFrom", {})
        if "configMapKeyRef" in source:
            env[name] = keyed(resources, "ConfigMap", source["configMapKeyRef"], name)
        elif "secretKeyRef" in source:
            env[name] = keyed(resources, "Secret", source["secretKeyRef"], name)
        elif "fieldRef" in source:
            env[name] = field_value(source["fieldRef"]["fieldPath"], pod)
        else:
            raise Unsupported(f"env {name}: valueFrom {sorted(source)} is not simulated")
    if "envFrom" in container:
        raise Unsupported("envFrom is not simulated")
    return env


def keyed(resources, kind, ref, variable):
    """A configMapKeyRef or secretKeyRef: a missing object or key stops the pod from starting
    (CreateContainerConfigError), as in a cluster, unless the reference is optional."""
    found = resources.get((kind, ref["name"]))
    data = None
    if found is not None:
        data = dict(found.get("data") or {})
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(found.get("stringData") or {})
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return ""
        raise Unsupported(f"env {variable}: {kind} {ref['name']} has no key {ref['key']} (the pod would not start)")
    return data[ref["key"]]


def quantity(text, cpu=False):
    """A Kubernetes quantity: bytes for memory, cores for cpu."""
    text = str(text)
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "m": 1e-3}
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def resource_flags(resources):
    """Limits as the kubelet enforces them (memory and cpu limits; cpu requests as shares, so
    a busy node divides its cores by request). Memory requests only place pods on nodes."""
    flags = []
    limits = resources.get("limits", {})
    requests = resources.get("requests", {})
    if "memory" in limits:
        flags.append(f"--memory={int(quantity(limits['memory']))}")
    if "cpu" in limits:
        flags.append(f"--cpus={quantity(limits['cpu'])}")
    if "cpu" in requests:
        flags.append(f"--cpu-shares={max(2, int(quantity(requests['cpu']) * 1024))}")
    unknown = (set(limits) | set(requests)) - {"cpu", "memory"}
    if unknown:
        raise Unsupported(f"resources {sorted(unknown)} are not simulated")
    return flags


def security_flags(pod_context, container_context):
    """The pod's user and groups, the container's capabilities, privilege escalation and
    read-only root filesystem."""
    for context, known, where in (
        (pod_context, POD_SECURITY_FIELDS, "pod securityContext"),
        (container_context, CONTAINER_SECURITY_FIELDS, "container securityContext"),
    ):
        unknown = set(context) - known
        if unknown:
            raise Unsupported(f"{where} fields {sorted(unknown)} are not simulated")
    flags = []
    user = pod_context.get("runAsUser")
    if user is None:
        raise Unsupported("no runAsUser: the simulation runs pods as the user the manifest names")
    non_root = container_context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    if non_root and user == 0:
        raise Unsupported("runAsNonRoot with runAsUser 0: the pod would not start")
    flags.append(f"--user={user}:{pod_context.get('runAsGroup', 0)}")
    if "fsGroup" in pod_context:
        flags.append(f"--group-add={pod_context['fsGroup']}")
    if container_context.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if container_context.get("allowPrivilegeEscalation") is False:
        flags.append("--security-opt=no-new-privileges")
    capabilities = container_context.get("capabilities", {})
    flags += [f"--cap-drop={c}" for c in capabilities.get("drop", [])]
    flags += [f"--cap-add={c}" for c in capabilities.get("add", [])]
    return flags


def container_run(pod, resources):
    """The pod's one container as (image, docker flags, entrypoint or None, arguments, env,
    mounts); mounts are (volume, mountPath, readOnly) for the caller to bind."""
    spec = pod["spec"]
    unknown = set(spec) - IGNORED_POD_FIELDS
    if unknown:
        raise Unsupported(f"pod fields {sorted(unknown)} are not simulated")
    if len(spec["containers"]) != 1:
        raise Unsupported("the simulation runs pods of one container")
    container = spec["containers"][0]
    unknown = set(container) - IGNORED_CONTAINER_FIELDS - MAPPED_CONTAINER_FIELDS
    if unknown:
        raise Unsupported(f"container {container['name']}: fields {sorted(unknown)} are not simulated")
    env = environment(container, pod, resources)
    command = [expand(part, env) for part in container.get("command", [])]
    args = [expand(part, env) for part in container.get("args", [])]
    flags = resource_flags(container.get("resources", {}))
    flags += security_flags(spec.get("securityContext", {}), container.get("securityContext", {}))
    entrypoint = command[0] if command else None
    mounts = [(m["name"], m["mountPath"], bool(m.get("readOnly"))) for m in container.get("volumeMounts", [])]
    return container["image"], flags, entrypoint, command[1:] + args, env, mounts


def indexed_pods(job):
    """The pods the Job controller creates: for an Indexed Job one per completion index, each
    with the index annotation and JOB_COMPLETION_INDEX in every container (added when the
    template does not define it)."""
    spec = job["spec"]
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions", 1)
    if spec.get("parallelism", 1) < completions:
        raise Unsupported(f"Job {job['metadata']['name']}: parallelism below completions is not simulated")
    pods = []
    for index in range(completions if indexed else 1):
        template = spec["template"]
        metadata = dict(template.get("metadata", {}))
        metadata["name"] = f"{job['metadata']['name']}-{index}"
        metadata["namespace"] = job["metadata"].get("namespace", "default")
        metadata["annotations"] = dict(metadata.get("annotations", {}))
        pod_spec = dict(template["spec"])
        if indexed:
            metadata["annotations"][INDEX_ANNOTATION] = str(index)
            pod_spec["containers"] = [with_index_env(c) for c in pod_spec["containers"]]
        pods.append({"metadata": metadata, "spec": pod_spec, "index": index})
    return pods


def with_index_env(container):
    env = list(container.get("env", []))
    if not any(entry["name"] == "JOB_COMPLETION_INDEX" for entry in env):
        env.append(
            {
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}},
            }
        )
    return {**container, "env": env}
