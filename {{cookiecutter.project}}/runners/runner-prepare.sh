#!/usr/bin/env bash
# ExecStartPre=+ of explorer-runner.service, before every start of the runner (so before every job
# of an ephemeral runner): empty the work folder the last job left, then make sure the runner is
# registered. An ephemeral registration is used up by one job; a new one needs a registration
# token, which this script asks GitHub for with the API token in EXPLORER_API_TOKEN_FILE
# (installed root-only by `register.sh --api-token-file`). The labels are derived from the
# inventory again, leaving out the boards the health timer took out of service.
#
# systemd runs it as root (the `+`), so the API token, which may administer the repository, stays
# readable by root only: jobs run as the service user and never see it. Everything the service
# user can write (the runner folder, the state folder) is only read here, or handled as that user:
# the clean-up and config.sh run as RUNNER_USER; Python runs isolated (-I), outside the runner folder.
#
# Settings come from /etc/explorer/runner.env (EnvironmentFile of the unit).
set -euo pipefail

PROG=runner-prepare
# shellcheck source=runner-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/runner-lib.sh"

: "${RUNNER_DIR:?set in /etc/explorer/runner.env}"
: "${RUNNER_URL:?set in /etc/explorer/runner.env}"
: "${RUNNER_NAME:?set in /etc/explorer/runner.env}"
: "${RUNNER_USER:?set in /etc/explorer/runner.env}"
: "${EXPLORER_VENV:?set in /etc/explorer/runner.env}"
: "${EXPLORER_INVENTORY:?set in /etc/explorer/runner.env}"
OUT_OF_SERVICE=${EXPLORER_OUT_OF_SERVICE:-}
API_TOKEN_FILE=${EXPLORER_API_TOKEN_FILE:-}
JSON_PYTHON="$EXPLORER_VENV/bin/python"

if [[ $(id -u) -eq 0 ]]; then
  as_user=(runuser -u "$RUNNER_USER" --)
elif [[ $(id -un) == "$RUNNER_USER" ]]; then
  as_user=()
else
  die "run as root (ExecStartPre=+) or as $RUNNER_USER"
fi

cd /
# A job's files never reach the next job (find -delete does not follow symbolic links; chmod
# first, so a folder a job made unwritable goes too).
if [[ -d $RUNNER_DIR/_work ]]; then
  "${as_user[@]}" chmod -R u+rwX "$RUNNER_DIR/_work"
  "${as_user[@]}" find "$RUNNER_DIR/_work" -mindepth 1 -delete
fi

if [[ -f $RUNNER_DIR/.runner ]]; then
  note "registration present, starting the runner"
  exit 0
fi

if [[ -z $API_TOKEN_FILE || ! -r $API_TOKEN_FILE ]]; then
  die "the runner's one-job registration is used up and no API token is configured: run register.sh again with a fresh registration token, or give it --api-token-file so the runner can register itself after each job (see runners/README.md)"
fi
API_TOKEN=$(<"$API_TOKEN_FILE")
TOKEN=$(registration_token)
unset API_TOKEN

labels=$(board_labels "$EXPLORER_INVENTORY" "$JSON_PYTHON" "$OUT_OF_SERVICE") ||
  die "cannot derive labels from $EXPLORER_INVENTORY (see the line above)"
args=(--unattended --url "$RUNNER_URL" --name "$RUNNER_NAME" --work _work --replace)
if [[ -n $labels ]]; then
  args+=(--labels "$labels")
fi
if [[ -n ${RUNNER_GROUP:-} ]]; then
  args+=(--runnergroup "$RUNNER_GROUP")
fi
if [[ ${RUNNER_EPHEMERAL:-1} == 1 ]]; then
  args+=(--ephemeral)
fi

note "registering $RUNNER_NAME at $RUNNER_URL with labels: ${labels:-none (only the default ones)}"
cd "$RUNNER_DIR"
# The registration token reaches config.sh in its environment only (the runner reads and clears
# ACTIONS_RUNNER_INPUT_TOKEN), never on a command line.
ACTIONS_RUNNER_INPUT_TOKEN=$TOKEN "${as_user[@]}" ./config.sh "${args[@]}"
