"""Parses a Prometheus text exposition from stdin with the prometheus-client package's own parser
and prints its families as JSON: {name: {"type": ..., "samples": [[name, labels, value], ...]}}.
Any parse error exits non-zero."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [
            [s.name, s.labels, "+Inf" if math.isinf(s.value) else s.value] for s in family.samples
        ],
    }
json.dump(families, sys.stdout)
