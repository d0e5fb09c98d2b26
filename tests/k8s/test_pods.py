"""tests/k8s/pods.py: how a rendered pod template becomes a container; and the scenario file
tests/k8s/simulate.py writes (python -m unittest)."""

import base64
import tomllib
import unittest

import pods
import simulate


def job(env, **container):
    return {
        "metadata": {"name": "shards", "namespace": "ns"},
        "spec": {
            "completionMode": "Indexed",
            "completions": 2,
            "parallelism": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                    },
                    "containers": [{"name": "shard", "image": "dpsbench:t", "env": env, **container}],
                }
            },
        },
    }


RESOURCES = {
    ("ConfigMap", "run-abc"): {"data": {"RUN_ID": "r1"}},
    ("Secret", "key"): {"data": {"K": base64.b64encode(b"s3cret").decode()}},
}


class Expand(unittest.TestCase):
    def test_defined_variables_are_replaced_undefined_stay_and_double_dollar_escapes(self):
        env = {"A": "1", "B": "x"}
        self.assertEqual(pods.expand("$(A)/$(B)", env), "1/x")
        self.assertEqual(pods.expand("$(MISSING)-$(A)", env), "$(MISSING)-1")
        self.assertEqual(pods.expand("$$(A) costs $$5", env), "$(A) costs $5")


class Environment(unittest.TestCase):
    def test_values_resolve_in_order_from_config_maps_secrets_and_the_completion_index(self):
        env = [
            {"name": "SHARD", "value": "$(JOB_COMPLETION_INDEX)/2"},  # before the index: stays
            {
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{pods.INDEX_ANNOTATION}']"}},
            },
            {"name": "SHARD_AFTER", "value": "$(JOB_COMPLETION_INDEX)/2"},
            {"name": "RUN_ID", "valueFrom": {"configMapKeyRef": {"name": "run-abc", "key": "RUN_ID"}}},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "key", "key": "K"}}},
        ]
        pod = pods.indexed_pods(job(env, args=["--out", "/reports/$(RUN_ID)/shard-$(JOB_COMPLETION_INDEX)"]))[1]
        image, flags, entrypoint, arguments, resolved, _ = pods.container_run(pod, RESOURCES)
        self.assertEqual(resolved["SHARD"], "$(JOB_COMPLETION_INDEX)/2")
        self.assertEqual(resolved["SHARD_AFTER"], "1/2")
        self.assertEqual((resolved["RUN_ID"], resolved["KEY"]), ("r1", "s3cret"))
        self.assertEqual((image, entrypoint, arguments), ("dpsbench:t", None, ["--out", "/reports/r1/shard-1"]))
        self.assertIn("--user=10001:10001", flags)

    def test_the_job_controller_adds_the_index_variable_when_the_template_has_none(self):
        pod = pods.indexed_pods(job([], args=["$(JOB_COMPLETION_INDEX)"]))[0]
        self.assertEqual(pods.container_run(pod, RESOURCES)[3], ["0"])

    def test_a_missing_key_stops_the_pod_unless_optional(self):
        missing = {"configMapKeyRef": {"name": "run-abc", "key": "START_AT"}}
        pod = pods.indexed_pods(job([{"name": "S", "valueFrom": missing}]))[0]
        with self.assertRaisesRegex(pods.Unsupported, "has no key START_AT"):
            pods.container_run(pod, RESOURCES)
        pod = pods.indexed_pods(
            job([{"name": "S", "valueFrom": {"configMapKeyRef": {**missing["configMapKeyRef"], "optional": True}}}])
        )[0]
        self.assertEqual(pods.container_run(pod, RESOURCES)[4]["S"], "")


class Refusals(unittest.TestCase):
    def test_a_field_the_simulation_cannot_reproduce_is_refused_by_name(self):
        with self.assertRaisesRegex(pods.Unsupported, "workingDir"):
            pods.container_run(pods.indexed_pods(job([], workingDir="/tmp"))[0], RESOURCES)
        with self.assertRaisesRegex(pods.Unsupported, "ephemeral-storage"):
            pods.container_run(
                pods.indexed_pods(job([], resources={"limits": {"ephemeral-storage": "1Gi"}}))[0], RESOURCES
            )


class Limits(unittest.TestCase):
    def test_quantities_as_the_kubelet_enforces_them(self):
        flags = pods.resource_flags(
            {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi", "cpu": "2"}}
        )
        self.assertEqual(flags, ["--memory=2147483648", "--cpus=2.0", "--cpu-shares=512"])


class ScenarioText(unittest.TestCase):
    def test_the_written_scenario_reads_back_as_the_merged_tables(self):
        document = {
            "name": "k8s-storm",
            "target": {"kind": "dps", "port": 8883, "hubs": ["a", "b"]},
            "slo": {"phase_p99_ms": {"tls_handshake": 250}, "max_failed": 0},
            "run": {"max_schedule_lag_p99_ms": 1000, "ratio": 1.5, "flag": True},
        }
        self.assertEqual(tomllib.loads(simulate.toml_text(document)), document)


if __name__ == "__main__":
    unittest.main()
