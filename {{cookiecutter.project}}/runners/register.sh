#!/usr/bin/env bash
# Turn this host (a Raspberry Pi with 64-bit Raspberry Pi OS, or any 64-bit Linux with systemd)
# into an ephemeral GitHub Actions runner for the boards in an inventory. See runners/README.md.
#
#   sudo RUNNER_TOKEN=... ./register.sh --url https://github.com/OWNER/REPO \
#        --inventory boards.yaml --runner-tarball actions-runner-linux-arm64-2.x.y.tar.gz
#
# --dry-run prints every action (tokens masked) and changes nothing.
set -euo pipefail

PROG=register.sh
HERE=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=runner-lib.sh
source "$HERE/runner-lib.sh"

usage() {
  cat <<'EOF'
Usage: register.sh --url URL [options]

Registers this host as an ephemeral self-hosted GitHub Actions runner with labels derived from the
board inventory, as the service user `explorer`, and installs the udev rules and systemd units.

  --url URL              repository (https://github.com/OWNER/REPO) or organization URL
  --token-file FILE      registration token (Settings > Actions > Runners > New self-hosted runner),
                         or the environment variable RUNNER_TOKEN; valid one hour
  --api-token-file FILE  a token allowed to create registration tokens (fine-grained PAT or GitHub App
                         token with "Administration: write" on the repository), or GITHUB_API_TOKEN:
                         lets the ephemeral runner register itself again after every job
  --inventory FILE       the board inventory (default: /etc/explorer/boards.yaml)
  --runner-dir DIR       where the actions runner lives (default: /opt/actions-runner)
  --runner-tarball FILE  actions-runner-linux-<arm64|x64>-<version>.tar.gz to unpack into --runner-dir
  --name NAME            runner name (default: this host's name)
  --group GROUP          runner group (organization runners)
  --user USER            the service user (default: explorer)
  --engine DIR           the explorer engine to install into the venv (default: ../engine)
  --venv DIR             the engine's virtual environment (default: /opt/explorer/venv)
  --torch-index URL      pip index for torch (x86_64 default: the PyTorch CPU index)
  --skip-engine          the venv already has the engine: do not pip install
  --python PYTHON        a Python with the engine, for the labels of a dry run (or EXPLORER_PYTHON)
  --persistent           keep one registration for many jobs (not recommended, see README)
  --arch MACHINE         take MACHINE as `uname -m` (tests; or EXPLORER_UNAME_M)
  --dry-run              print every action, change nothing
  -h, --help             this text
EOF
}

# ---------------------------------------------------------------- options
URL="" TOKEN_FILE="" API_TOKEN_FILE="" INVENTORY=/etc/explorer/boards.yaml
RUNNER_DIR=/opt/actions-runner TARBALL="" NAME="" GROUP="" SERVICE_USER=explorer
ENGINE="$HERE/../engine" VENV=/opt/explorer/venv TORCH_INDEX="" SKIP_ENGINE=0
PYTHON=${EXPLORER_PYTHON:-} EPHEMERAL=1 MACHINE=${EXPLORER_UNAME_M:-} DRY_RUN=0

ORIGINAL_ARGS=("$@")
need_value() {
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (hint: register.sh --help)" 2
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --url) need_value "$@"; URL=$2; shift 2 ;;
    --token-file) need_value "$@"; TOKEN_FILE=$2; shift 2 ;;
    --api-token-file) need_value "$@"; API_TOKEN_FILE=$2; shift 2 ;;
    --inventory) need_value "$@"; INVENTORY=$2; shift 2 ;;
    --runner-dir) need_value "$@"; RUNNER_DIR=$2; shift 2 ;;
    --runner-tarball) need_value "$@"; TARBALL=$2; shift 2 ;;
    --name) need_value "$@"; NAME=$2; shift 2 ;;
    --group) need_value "$@"; GROUP=$2; shift 2 ;;
    --user) need_value "$@"; SERVICE_USER=$2; shift 2 ;;
    --engine) need_value "$@"; ENGINE=$2; shift 2 ;;
    --venv) need_value "$@"; VENV=$2; shift 2 ;;
    --torch-index) need_value "$@"; TORCH_INDEX=$2; shift 2 ;;
    --skip-engine) SKIP_ENGINE=1; shift ;;
    --python) need_value "$@"; PYTHON=$2; shift 2 ;;
    --persistent) EPHEMERAL=0; shift ;;
    --arch) need_value "$@"; MACHINE=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (hint: register.sh --help)" 2 ;;
  esac
done

# ---------------------------------------------------------------- 1. a 64-bit machine
# GitHub's runner ships for x64 and arm64 only. A Pi under 32-bit Raspberry Pi OS often runs a
# 64-bit kernel (uname -m says aarch64) with a 32-bit user space: getconf LONG_BIT tells.
MACHINE=${MACHINE:-$(uname -m)}
LONG_BIT=${EXPLORER_LONG_BIT:-$(getconf LONG_BIT)}
case $MACHINE in
  aarch64 | arm64) ARCH_LABEL=ARM64 TARBALL_ARCH=arm64 ;;
  x86_64 | amd64) ARCH_LABEL=X64 TARBALL_ARCH=x64 ;;
  armv6l | armv7l | armv8l | armhf | arm | i386 | i486 | i586 | i686)
    die "this is a 32-bit system ($MACHINE): GitHub Actions no longer supports 32-bit ARM or x86 runners; install the 64-bit Raspberry Pi OS (or a 64-bit Linux) and run register.sh again" ;;
  *) die "the GitHub Actions runner does not support this machine ($MACHINE); it needs 64-bit x86_64 or aarch64" ;;
esac
if [[ $LONG_BIT != 64 ]]; then
  die "this is a 32-bit system: a $MACHINE kernel with a $LONG_BIT-bit user space (getconf LONG_BIT); GitHub Actions no longer supports 32-bit ARM runners; install the 64-bit Raspberry Pi OS and run register.sh again"
fi

# ---------------------------------------------------------------- 2. permissions
if [[ $(id -u) -eq 0 ]]; then
  PRIVILEGE=root
elif command -v sudo >/dev/null 2>&1; then
  PRIVILEGE=sudo
else
  die "register.sh must run as root (it creates a user, installs udev rules and systemd units) and sudo is not installed: run it as root"
fi
if [[ $PRIVILEGE == sudo && $DRY_RUN -eq 0 ]]; then
  # Once, up front: the rest of the script runs as root. The tokens stay in the environment.
  exec sudo --preserve-env=RUNNER_TOKEN,GITHUB_API_TOKEN,EXPLORER_PYTHON,EXPLORER_UNAME_M,EXPLORER_LONG_BIT \
    -- bash "$HERE/register.sh" "${ORIGINAL_ARGS[@]}"
fi

# ---------------------------------------------------------------- 3. tools
missing=()
for tool in curl tar systemctl useradd usermod groupadd runuser install getent find python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  die "missing tools: ${missing[*]} (hint: sudo apt-get install curl tar systemd passwd util-linux python3 python3-venv)"
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  die "python3 is $(python3 -c 'import platform; print(platform.python_version())'); the explorer engine needs 3.11 or later (64-bit Raspberry Pi OS Bookworm has it)"
fi
if [[ $SKIP_ENGINE -eq 0 ]] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  die "python3 cannot create virtual environments (hint: sudo apt-get install python3-venv)"
fi
SYSTEMD_RUNNING=1
[[ -d /run/systemd/system ]] || SYSTEMD_RUNNING=0
if [[ $SYSTEMD_RUNNING -eq 0 && $DRY_RUN -eq 0 ]]; then
  die "systemd is not running on this machine (no /run/systemd/system): the runner and the health timer are systemd units"
fi

# ---------------------------------------------------------------- 4. inputs
[[ -n $URL ]] || die "--url is required, e.g. --url https://github.com/OWNER/REPO (hint: register.sh --help)" 2
valid_runner_url "$URL" || die "--url $URL is not a repository or organization URL like https://github.com/OWNER/REPO" 2
api_scope "$URL" >/dev/null || die "--url $URL is not a repository or organization URL like https://github.com/OWNER/REPO" 2

if [[ -n $TOKEN_FILE ]]; then
  [[ -r $TOKEN_FILE ]] || die "--token-file $TOKEN_FILE cannot be read"
  TOKEN=$(<"$TOKEN_FILE")
else
  TOKEN=${RUNNER_TOKEN:-}
fi
[[ -n $TOKEN ]] || die "no registration token: set RUNNER_TOKEN or give --token-file (Settings > Actions > Runners > New self-hosted runner shows one, valid one hour)"
[[ $TOKEN =~ ^[A-Za-z0-9_.-]+$ ]] || die "the registration token holds characters a GitHub token never has (a stray quote or space?)"
if [[ -n $API_TOKEN_FILE ]]; then
  [[ -r $API_TOKEN_FILE ]] || die "--api-token-file $API_TOKEN_FILE cannot be read"
  API_TOKEN=$(<"$API_TOKEN_FILE")
else
  API_TOKEN=${GITHUB_API_TOKEN:-}
fi
[[ -z $API_TOKEN || $API_TOKEN =~ ^[A-Za-z0-9_.-]+$ ]] || die "the API token holds characters a GitHub token never has (a stray quote or space?)"

[[ -f $INVENTORY ]] || die "no inventory at $INVENTORY (hint: copy $HERE/boards.example.yaml, edit it, pass --inventory FILE)"
INVENTORY=$(readlink -f "$INVENTORY")

if [[ -n $TARBALL ]]; then
  [[ -f $TARBALL ]] || die "--runner-tarball $TARBALL does not exist (hint: download it as runners/README.md shows)"
  case $(basename "$TARBALL") in
    actions-runner-linux-"$TARBALL_ARCH"-*.tar.gz) ;;
    actions-runner-linux-*.tar.gz) die "$(basename "$TARBALL") is not the runner for this $MACHINE machine: take actions-runner-linux-$TARBALL_ARCH-<version>.tar.gz" ;;
    *) die "--runner-tarball $TARBALL is not an actions-runner-linux-$TARBALL_ARCH-<version>.tar.gz" ;;
  esac
  TARBALL=$(readlink -f "$TARBALL")
elif [[ ! -x $RUNNER_DIR/config.sh || ! -x $RUNNER_DIR/run.sh ]]; then
  die "no actions runner in $RUNNER_DIR (no config.sh / run.sh): pass --runner-tarball FILE or --runner-dir DIR (hint: runners/README.md, step 'the runner')"
fi

if [[ $SKIP_ENGINE -eq 0 && ! -f $ENGINE/pyproject.toml ]]; then
  die "no explorer engine at $ENGINE (hint: --engine DIR, or --skip-engine when $VENV already has it)"
fi
[[ -n $NAME ]] || NAME=$(hostname)
[[ $NAME =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || die "--name $NAME: use up to 64 of A-Z a-z 0-9 . _ -" 2
[[ $SERVICE_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "--user $SERVICE_USER is not a valid user name" 2
if [[ -z $TORCH_INDEX && $TARBALL_ARCH == x64 ]]; then
  TORCH_INDEX=https://download.pytorch.org/whl/cpu # PyPI's x86_64 torch pulls several GB of CUDA
fi

STATE=/var/lib/$SERVICE_USER
CONFIG=/etc/explorer
BIN=/opt/explorer/bin
UNITS=/etc/systemd/system
SETTINGS="$CONFIG/runner.env"

# ---------------------------------------------------------------- how actions are taken
if [[ $DRY_RUN -eq 1 ]]; then
  note "dry run: nothing is changed; these are the actions a real run takes"
  if [[ $PRIVILEGE == sudo ]]; then
    note "a real run re-runs this script with sudo (it needs root)"
  fi
  if [[ $SYSTEMD_RUNNING -eq 0 ]]; then
    note "systemd is not running here: a real run would stop before any action"
  fi
fi

# Run (or, in a dry run, print) one command.
act() {
  printf '+ %s\n' "$(shell_quote "$@")"
  if [[ $DRY_RUN -eq 0 ]]; then
    "$@"
  fi
}

# Write CONTENT to FILE with MODE (root-owned); the dry run shows the text.
write_file() {
  local file=$1 mode=$2 content=$3
  printf '+ write %s (mode %s):\n' "$file" "$mode"
  printf '%s' "$content" | sed 's/^/    /'
  if [[ $DRY_RUN -eq 0 ]]; then
    install -d -m 0755 "$(dirname "$file")"
    (umask 077 && printf '%s' "$content" >"$file.partial")
    chmod "$mode" "$file.partial"
    mv -f "$file.partial" "$file"
  fi
}

# A secret to a root-only file: the dry run never shows it.
write_secret() {
  local file=$1 secret=$2
  printf '+ write %s (mode 0600, root only): ***\n' "$file"
  if [[ $DRY_RUN -eq 0 ]]; then
    install -d -m 0755 "$(dirname "$file")"
    install -m 0600 /dev/null "$file"  # an existing file keeps its mode otherwise
    (umask 077 && printf '%s\n' "$secret" >"$file")
  fi
}

# ---------------------------------------------------------------- 5. the service user
note "service user $SERVICE_USER (home $STATE), in groups dialout and plugdev"
for group in dialout plugdev; do
  getent group "$group" >/dev/null || act groupadd --system "$group"
done
if getent passwd "$SERVICE_USER" >/dev/null; then
  act usermod --append --groups dialout,plugdev "$SERVICE_USER"
else
  act useradd --system --user-group --create-home --home-dir "$STATE" --shell /usr/sbin/nologin \
    --groups dialout,plugdev --comment "explorer board runner" "$SERVICE_USER"
fi
act install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$STATE" "$STATE/leases"
act install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0700 "$STATE/.ssh"

# ---------------------------------------------------------------- 6. udev rules for the Picos
note "udev rules: /dev/pico-<serial> for each Pico, group access instead of root"
act install -m 0644 "$HERE/udev/99-explorer-pico.rules" /etc/udev/rules.d/99-explorer-pico.rules
if command -v udevadm >/dev/null 2>&1; then
  act udevadm control --reload
  act udevadm trigger --action=add --subsystem-match=tty --subsystem-match=usb
fi

# ---------------------------------------------------------------- 7. inventory and engine
note "inventory $CONFIG/boards.yaml and the explorer engine in $VENV"
act install -d -m 0755 "$CONFIG"
if [[ $INVENTORY != "$CONFIG/boards.yaml" ]]; then
  act install -m 0644 "$INVENTORY" "$CONFIG/boards.yaml"
fi
if [[ $SKIP_ENGINE -eq 0 ]]; then
  act python3 -m venv "$VENV"
  act "$VENV/bin/python" -m pip install --quiet --upgrade pip
  if [[ -n $TORCH_INDEX ]]; then
    # torch first, from its index and within the engine's range, so the engine's install keeps it.
    torch=$(python3 -c 'import re, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print(next((d for d in deps if re.match(r"torch\b", d)), "torch"))' "$ENGINE/pyproject.toml")
    act "$VENV/bin/python" -m pip install --quiet --index-url "$TORCH_INDEX" "$torch"
  fi
  act "$VENV/bin/python" -m pip install --quiet "$(readlink -f "$ENGINE")"
fi

# The labels: from the installed engine, or (dry run) from the Python given / found.
if [[ -z $PYTHON ]]; then
  if [[ -x $VENV/bin/python ]]; then
    PYTHON=$VENV/bin/python
  else
    PYTHON=python3
  fi
fi
if ! "$PYTHON" -I -c 'import explorer.boards.labels' 2>/dev/null; then
  if [[ $DRY_RUN -eq 0 ]]; then
    die "$PYTHON cannot import the explorer engine (hint: leave out --skip-engine, or give --venv DIR of an installed engine)"
  fi
  # Before the first real run no Python has the engine: show where the labels go.
  note "no Python with the explorer engine yet (--python PATH shows the real labels): the labels are derived once it is installed"
  LABELS="<labels from $CONFIG/boards.yaml>"
else
  LABELS=$(board_labels "$INVENTORY" "$PYTHON") || die "the inventory $INVENTORY is not valid (see the line above)"
fi
note "labels: self-hosted, Linux, $ARCH_LABEL (GitHub adds these) and from the inventory: ${LABELS:-none}"

# ---------------------------------------------------------------- 8. helper scripts and settings
API_TOKEN_PATH=""
if [[ -n $API_TOKEN || -f $CONFIG/github-api-token ]]; then
  API_TOKEN_PATH=$CONFIG/github-api-token
fi
act install -d -m 0755 "$BIN"
act install -m 0755 "$HERE/runner-lib.sh" "$HERE/runner-prepare.sh" "$HERE/take-out-of-service.sh" "$BIN/"
act install -m 0644 "$HERE/README.md" /opt/explorer/README.md
write_file "$SETTINGS" 0644 "# Written by runners/register.sh; read by explorer-runner.service and explorer-boards-check.service.
RUNNER_URL=$URL
RUNNER_NAME=$NAME
RUNNER_GROUP=$GROUP
RUNNER_DIR=$RUNNER_DIR
RUNNER_USER=$SERVICE_USER
RUNNER_EPHEMERAL=$EPHEMERAL
EXPLORER_VENV=$VENV
EXPLORER_INVENTORY=$CONFIG/boards.yaml
EXPLORER_LEASE_DIR=$STATE/leases
EXPLORER_OUT_OF_SERVICE=$STATE/out-of-service
EXPLORER_API_TOKEN_FILE=$API_TOKEN_PATH
"
if [[ -n $API_TOKEN ]]; then
  # Root only: runner-prepare.sh reads it as root; jobs (as the service user) cannot.
  write_secret "$CONFIG/github-api-token" "$API_TOKEN"
elif [[ -n $API_TOKEN_PATH ]]; then
  note "keeping the API token installed before ($API_TOKEN_PATH)"
elif [[ $EPHEMERAL -eq 1 ]]; then
  note "no API token: the runner takes one job, then waits for register.sh to run again (give --api-token-file to keep it serving)"
fi

# ---------------------------------------------------------------- 9. the runner
note "actions runner in $RUNNER_DIR, registered as $NAME at $URL"
if [[ $SYSTEMD_RUNNING -eq 1 ]] && systemctl is-active --quiet explorer-runner.service; then
  act systemctl stop explorer-runner.service
fi
act install -d -m 0755 "$RUNNER_DIR"
if [[ -n $TARBALL ]]; then
  act tar -xzf "$TARBALL" -C "$RUNNER_DIR"
fi
act "$RUNNER_DIR/bin/installdependencies.sh"
act chown -R "$SERVICE_USER:$SERVICE_USER" "$RUNNER_DIR"
# A configured runner refuses config.sh: drop the local registration, --replace takes the name over.
act rm -f "$RUNNER_DIR/.runner" "$RUNNER_DIR/.credentials" "$RUNNER_DIR/.credentials_rsaparams"

config=(./config.sh --unattended --url "$URL" --name "$NAME" --work _work --replace)
[[ -n $LABELS ]] && config+=(--labels "$LABELS")
[[ -n $GROUP ]] && config+=(--runnergroup "$GROUP")
[[ $EPHEMERAL -eq 1 ]] && config+=(--ephemeral)
# The token reaches config.sh in its environment (the runner reads ACTIONS_RUNNER_INPUT_TOKEN and
# clears it), never on a command line; the log shows it masked.
printf '+ cd %s && ACTIONS_RUNNER_INPUT_TOKEN=*** %s\n' "$RUNNER_DIR" "$(shell_quote runuser -u "$SERVICE_USER" -- "${config[@]}")"
if [[ $DRY_RUN -eq 0 ]]; then
  (cd "$RUNNER_DIR" && ACTIONS_RUNNER_INPUT_TOKEN=$TOKEN runuser -u "$SERVICE_USER" -- "${config[@]}")
fi
unset TOKEN
# Jobs find the inventory and the shared lease folder through the runner's .env file.
for setting in "EXPLORER_INVENTORY=$CONFIG/boards.yaml" "EXPLORER_LEASE_DIR=$STATE/leases"; do
  printf '+ append %s to %s/.env (unless set)\n' "$setting" "$RUNNER_DIR"
  if [[ $DRY_RUN -eq 0 ]] && ! grep -q "^${setting%%=*}=" "$RUNNER_DIR/.env" 2>/dev/null; then
    printf '%s\n' "$setting" >>"$RUNNER_DIR/.env"
    chown "$SERVICE_USER:$SERVICE_USER" "$RUNNER_DIR/.env"
  fi
done

# ---------------------------------------------------------------- 10. systemd units
note "systemd: explorer-runner.service and the health timer explorer-boards-check.timer"
for unit in explorer-runner.service explorer-boards-check.service explorer-boards-check.timer; do
  act install -m 0644 "$HERE/systemd/$unit" "$UNITS/$unit"
done
# The units name the default paths and user; other choices are written into the installed copies.
if [[ $RUNNER_DIR != /opt/actions-runner ]]; then
  act sed -i "s#/opt/actions-runner#$RUNNER_DIR#g" "$UNITS/explorer-runner.service"
fi
if [[ $SERVICE_USER != explorer ]]; then
  act sed -i "s#^User=explorer\$#User=$SERVICE_USER#; s#^Group=explorer\$#Group=$SERVICE_USER#; s#^StateDirectory=explorer\$#StateDirectory=$SERVICE_USER#" \
    "$UNITS/explorer-runner.service" "$UNITS/explorer-boards-check.service"
fi
act systemctl daemon-reload
act systemctl enable --now explorer-boards-check.timer
act systemctl enable --now explorer-runner.service

if [[ $DRY_RUN -eq 1 ]]; then
  note "dry run done: nothing was changed"
else
  note "done: journalctl -u explorer-runner -f shows the runner; explorer boards check --inventory $CONFIG/boards.yaml the boards"
fi
