#!/usr/bin/env bash
# ExecStart of explorer-boards-check.service (every 5 minutes, from its timer).
#
# 1. `explorer boards check --record`: every board is probed; a failing one is marked unhealthy in
#    the health files of the shared lease folder, so every pool (every job on this host) leaves it
#    out at once, and a board that passes again is marked healthy and comes back.
# 2. The unhealthy boards' names go to the out-of-service file; runner-prepare.sh leaves their
#    labels out when the ephemeral runner registers for its next job, so GitHub stops sending jobs
#    for a board that is gone.
# 3. Every change (out of service, back in service) is one line in the journal:
#    journalctl -u explorer-boards-check
#
# Exit code: 0 all boards healthy, 1 some board unhealthy (the unit shows as failed, which
# monitoring sees), 2 the inventory or the check itself is broken.
set -euo pipefail

PROG=boards-check
: "${EXPLORER_VENV:?set in /etc/explorer/runner.env}"
: "${EXPLORER_INVENTORY:?set in /etc/explorer/runner.env}"
: "${EXPLORER_LEASE_DIR:?set in /etc/explorer/runner.env}"
: "${EXPLORER_OUT_OF_SERVICE:?set in /etc/explorer/runner.env}"
TIMEOUT=${EXPLORER_CHECK_TIMEOUT:-10}

report=$(mktemp)
trap 'rm -f "$report"' EXIT

set +e
"$EXPLORER_VENV/bin/explorer" boards check --inventory "$EXPLORER_INVENTORY" --json --record \
  --lease-dir "$EXPLORER_LEASE_DIR" --timeout "$TIMEOUT" >"$report"
code=$?
set -e
if [[ $code -ne 0 && $code -ne 1 ]]; then
  printf '%s: error: explorer boards check failed with exit code %s (its message is above); boards left as they were\n' \
    "$PROG" "$code" >&2
  exit 2
fi

# The JSON report -> the new out-of-service file, and one journal line per board that changed.
"$EXPLORER_VENV/bin/python" - "$report" "$EXPLORER_OUT_OF_SERVICE" <<'PY'
import json
import os
import sys
from pathlib import Path

report, listing = Path(sys.argv[1]), Path(sys.argv[2])
try:
    rows = json.loads(report.read_text(encoding="utf-8"))["boards"]
except (ValueError, KeyError) as exc:
    sys.exit(f"boards-check: error: explorer boards check printed no JSON report ({exc})")


def reason(row):
    failed = [c for c in row["checks"] if c["ok"] is False]
    if failed:
        return f"{failed[0]['name']}: {failed[0]['detail']}"
    return (row.get("health") or {}).get("reason") or "marked unhealthy"


before = set()
if listing.is_file():
    before = {line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()}
down = {row["board"]: reason(row) for row in rows if not row["ok"]}
for name in sorted(set(down) - before):
    print(f"boards-check: {name} taken out of service: {down[name]}")
for name in sorted(before - set(down)):
    print(f"boards-check: {name} back in service")
for name in sorted(set(down) & before):
    print(f"boards-check: {name} still out of service: {down[name]}")
# Written next to the target then renamed: runner-prepare.sh never reads half a list.
partial = listing.with_name(listing.name + ".partial")
partial.write_text("".join(f"{name}\n" for name in sorted(down)), encoding="utf-8")
os.replace(partial, listing)
print(f"boards-check: {len(rows) - len(down)} of {len(rows)} boards in service")
PY
exit "$code"
