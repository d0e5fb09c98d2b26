"""Reads a JUnit XML report with the junitparser package (an independent reader, as CI systems
parse these files) and prints, as JSON, each suite's declared counts, and every test case with
its result: {"suites": [{"name", "tests", "failures", "errors", "skipped"}],
"cases": [{"classname", "name", "result", "type", "message"}]}. A file that does not parse exits
non-zero."""
import json
import sys

from junitparser import JUnitXml, TestSuite

xml = JUnitXml.fromfile(sys.argv[1])
suites = [xml] if isinstance(xml, TestSuite) else list(xml)
out = {"suites": [], "cases": []}
for suite in suites:
    out["suites"].append(
        {"name": suite.name, "tests": suite.tests, "failures": suite.failures, "errors": suite.errors,
         "skipped": suite.skipped}
    )
    for case in suite:
        results = case.result
        first = results[0] if results else None
        out["cases"].append(
            {
                "classname": case.classname,
                "name": case.name,
                "result": first._tag if first is not None else "passed",
                "type": first.type if first is not None else None,
                "message": first.message if first is not None else None,
            }
        )
json.dump(out, sys.stdout)
