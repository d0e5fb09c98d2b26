"""Parses each YAML file named on the command line (PyYAML's safe loader); for GitHub Actions
workflows, checks the shape a runner needs: `on`, and jobs each with `runs-on` and `steps`.
Exits non-zero naming the file on any error."""
import sys

import yaml

for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        sys.exit(f"{path}: not a mapping")
    # YAML 1.1 reads the key `on` as true.
    if "on" not in doc and True not in doc:
        sys.exit(f"{path}: no `on` trigger")
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        sys.exit(f"{path}: no jobs")
    for name, job in jobs.items():
        if "runs-on" not in job or not isinstance(job.get("steps"), list) or not job["steps"]:
            sys.exit(f"{path}: job {name} needs runs-on and steps")
        for step in job["steps"]:
            if not ("run" in step or "uses" in step):
                sys.exit(f"{path}: job {name} has a step with neither run nor uses: {step}")
    print(f"{path}: ok ({len(jobs)} jobs)")
