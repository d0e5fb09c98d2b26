"""Checks, through a real Prometheus's HTTP API, what tests/prometheus/run.sh sent it: the scraped
run and the pushed run each equal their summary.json, their failure kinds have zero series from
the first sample on, and every query of the Grafana dashboard is valid and returns data where
data is expected. Standard library only; exits 1 when any check fails."""

import argparse
import json
import re
import sys
import urllib.parse
import urllib.request

checks = {"passed": 0, "failed": 0}


def check(ok, what):
    checks["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + what)


def api(base, path, **params):
    url = base + path + "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        body = json.load(error)
    if body.get("status") != "success":
        raise ValueError("{}: {} {}".format(params, body.get("errorType"), body.get("error")))
    return body["data"]


def query(base, expr, at=None):
    """An instant query at `at` (Unix seconds), or now."""
    params = {"query": expr} if at is None else {"query": expr, "time": at}
    return api(base, "/api/v1/query", **params)


def value(base, expr, at):
    """The one value of an instant query, or None when it returns no series."""
    result = query(base, expr, at)["result"]
    if not result:
        return None
    if len(result) != 1:
        raise ValueError("{} series for {}".format(len(result), expr))
    return float(result[0]["value"][1])


def last_sample_time(base, selector):
    """The timestamp of the newest sample of `selector` (one series) within the last 10 minutes."""
    result = query(base, selector + "[10m]")["result"]
    if len(result) != 1:
        raise ValueError("{} series for {}".format(len(result), selector))
    return result[0]["values"][-1][0]


def check_run(base, name, labels, summary):
    """The run's figures at its last sample equal its summary; returns that instant."""
    at = last_sample_time(base, "dpsbench_run_ended{%s}" % labels)
    devices = summary["devices"]
    figures = [
        ("dpsbench_run_ended{%s}" % labels, 1),
        ("dpsbench_devices_started_total{%s}" % labels, devices["total"] - devices["not_started"]),
        ("dpsbench_devices_assigned_total{%s}" % labels, devices["assigned"]),
        ("dpsbench_devices_in_flight{%s}" % labels, 0),
        ("sum(dpsbench_devices_failed_total{%s})" % labels, devices["failed"]),
        ('dpsbench_phase_duration_seconds_count{phase="assigned",%s}' % labels, devices["assigned"]),
        ("dpsbench_throttled_total{%s}" % labels, int(summary["statuses"].get("429", 0))),
    ]
    for kind, count in summary["failures"].items():
        figures.append(('dpsbench_devices_failed_total{kind="%s",%s}' % (kind, labels), count))
    for expr, expected in figures:
        got = value(base, expr, at)
        check(got == expected, "{}: {} = {} (summary.json: {})".format(name, expr, got, expected))
    # Zero series, from the first sample on: as many samples as the started counter has.
    samples = 'count_over_time(dpsbench_devices_failed_total{kind="%s",%s}[10m])'
    started = value(base, "count_over_time(dpsbench_devices_started_total{%s}[10m])" % labels, at)
    for kind in ["status_429", "timeout_poll", "tls", "connect"]:
        if kind in summary["failures"]:
            continue
        got = value(base, 'dpsbench_devices_failed_total{kind="%s",%s}' % (kind, labels), at)
        kept = value(base, samples % (kind, labels), at)
        check(got == 0 and kept == started,
              "{}: {} at 0 in each of the {} samples ({} with it)".format(name, kind, started, kept))
    zero = value(base, "count(dpsbench_devices_failed_total{%s} == 0)" % labels, at)
    check(zero is not None and zero >= 30, "{}: {} failure kinds at zero".format(name, zero))
    return at


def expressions(node):
    """Every `expr` in a dashboard, in order."""
    if isinstance(node, dict):
        for key, item in node.items():
            if key == "expr" and isinstance(item, str):
                yield item
            else:
                yield from expressions(item)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def substitute(text, job, instance):
    """Grafana's variables as the dashboard would fill them for one run."""
    return (text.replace("$__rate_interval", "1m").replace("$job", job)
            .replace("$instance", instance))


def check_layout(dashboard):
    """What Grafana needs to import the dashboard: unique panel IDs, a known panel type, every
    query on the dashboard's Prometheus data source variable with its own refId."""
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    check(len(ids) == len(set(ids)), "dashboard: {} panels, unique IDs".format(len(ids)))
    variables = {v["name"]: v["type"] for v in dashboard["templating"]["list"]}
    check(variables.get("datasource") == "datasource", "dashboard: a Prometheus data source variable")
    for panel in panels:
        targets = panel.get("targets", [])
        refs = [target.get("refId") for target in targets]
        ok = (panel["type"] in ("stat", "timeseries", "bargauge") and targets and len(set(refs)) == len(refs)
              and all(t["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for t in targets)
              and set(panel["gridPos"]) == {"x", "y", "w", "h"})
        check(ok, "dashboard: panel {!r} ({}, {} queries)".format(panel["title"], panel["type"], len(targets)))


def check_dashboard(base, dashboard, name, job, instance, at, failures):
    exprs = list(expressions(dashboard))
    check(len(exprs) >= 10, "dashboard: {} queries".format(len(exprs)))
    for expr in exprs:
        filled = substitute(expr, job, instance)
        # A query keeping only kinds that failed has data only where a device failed.
        expected = failures or "> 0" not in expr
        try:
            data = query(base, filled, at)
        except ValueError as error:
            check(False, "{}: {} is not valid: {}".format(name, filled, error))
            continue
        series = data["result"]
        ok = data["resultType"] == "vector" and (bool(series) == expected)
        check(ok, "{}: {} series{} for {}".format(
            name, len(series), "" if expected else " (none expected)", filled))
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable.get("definition", ""))
        if not match:
            continue
        metric, label = substitute(match.group(1), job, instance), match.group(2)
        values = api(base, "/api/v1/label/{}/values".format(label), **{"match[]": metric})
        wanted = job if label == "job" else instance
        check(any(re.fullmatch(wanted, v) for v in values),
              "{}: variable {} offers {} ({})".format(name, variable["name"], values, wanted))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--scraped", required=True)
    parser.add_argument("--pushed", required=True)
    args = parser.parse_args()
    dashboard = json.load(open(args.dashboard))
    scraped = json.load(open(args.scraped))
    pushed = json.load(open(args.pushed))
    check(pushed["devices"]["failed"] > 0, "the pushed run has failures to show")
    check_layout(dashboard)
    runs = [
        ("scraped", "dpsbench-scrape", ".*", scraped),
        ("pushed", "dpsbench", "pushed-run", pushed),
    ]
    for name, job, instance, summary in runs:
        labels = 'job="{}",instance=~"{}"'.format(job, instance)
        try:
            at = check_run(args.api, name, labels, summary)
        except ValueError as error:
            check(False, "{}: {}".format(name, error))
            continue
        failures = summary["devices"]["failed"] > 0
        check_dashboard(args.api, dashboard, name, job, instance, at, failures)
    print("prometheus: {} passed, {} failed".format(checks["passed"], checks["failed"]))
    sys.exit(1 if checks["failed"] else 0)


if __name__ == "__main__":
    main()
