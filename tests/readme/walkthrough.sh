#!/usr/bin/env bash
# Runs README.md's walkthrough "A remote target, step by step" as written, from a fresh clone:
# what git would check out of this checkout (its tracked files with their changes, via
# `git stash create`, which touches no ref) in a temporary folder, with `dpsbench` on the PATH
# as the README tells the user to put it. The commands are the fenced blocks marked
# `<!-- walkthrough: emulator -->` and `<!-- walkthrough: run -->`, taken unchanged: the first
# runs in the background as the user's first terminal (the second waits for its ready line, as
# the user reads it), then the second must exit 0, and the emulator must stop cleanly on
# SIGINT (Ctrl-C), having served both runs.
#
# The walkthrough listens on 127.0.0.1:8883, a fixed port: run this only where no other test
# holds it (scripts/test runs it; run that under the lock that serialises fixed-port tests).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin="${DPSBENCH_BIN:-$root/target/debug/dpsbench}"
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)

fail() { echo "walkthrough: FAIL $*" >&2; exit 1; }

# The fenced sh block after the marker `<!-- walkthrough: NAME -->`, unindented.
block() {
  awk -v marker="<!-- walkthrough: $1 -->" '
    index($0, marker) { armed = 1; next }
    armed && /^ *```sh *$/ { inside = 1; match($0, /^ */); indent = RLENGTH; next }
    inside && /^ *``` *$/ { exit }
    inside { print substr($0, indent + 1) }
  ' "$root/README.md"
}
emulator_commands=$(block emulator)
run_commands=$(block run)
[ -n "$emulator_commands" ] || fail "README.md has no block marked walkthrough: emulator"
[ -n "$run_commands" ] || fail "README.md has no block marked walkthrough: run"

work=$(mktemp -d)
emulator=""
cleanup() {
  if [ -n "$emulator" ]; then kill -TERM -- "-$emulator" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

snapshot=$(git -C "$root" stash create 2>/dev/null || true)
mkdir "$work/clone" "$work/bin"
git -C "$root" archive "${snapshot:-HEAD}" | tar -x -C "$work/clone"
ln -s "$bin" "$work/bin/dpsbench"
export PATH="$work/bin:$PATH"
cd "$work/clone"

echo "walkthrough: terminal 1: $emulator_commands"
# Its own process group, so Ctrl-C (SIGINT to the group) reaches it as a terminal's would.
setsid bash -euo pipefail -c "$emulator_commands" >"$work/emulator.out" 2>"$work/emulator.err" &
emulator=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$work/emulator.out" 2>/dev/null && break
  kill -0 "$emulator" 2>/dev/null || { cat "$work/emulator.err" >&2; fail "the emulator did not start"; }
  sleep 0.1
done
grep -q "listening on" "$work/emulator.out" || fail "no ready line within 20 s"
cat "$work/emulator.out"

echo "walkthrough: terminal 2:"
bash -euxo pipefail -c "$run_commands" || fail "a command of the run block failed (exit $?)"

kill -INT -- "-$emulator"
status=0
wait "$emulator" || status=$?
emulator=""
cat "$work/emulator.err" >&2
[ "$status" = 0 ] || fail "the emulator exited $status on Ctrl-C"
grep -q "emulator stopped: " "$work/emulator.err" || fail "the emulator did not say what it served"

# What the README says the runs did: both folders hold a whole, valid run of every device.
for run in remote-1 remote-2; do
  python3 - "$work/clone/reports/$run/summary.json" <<'PY' || fail "reports/$run"
import json, sys
summary = json.load(open(sys.argv[1]))
devices = summary["devices"]
assert summary["target"]["kind"] == "dps", summary["target"]
assert devices["total"] == devices["assigned"] == 200, devices
assert summary["validity"]["valid"], summary["validity"]
PY
done
echo "walkthrough: ok (the README's commands ran as written)"
