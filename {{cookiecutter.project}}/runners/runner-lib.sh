# Functions shared by register.sh and runner-prepare.sh (sourced, not run).
# Secrets (registration and API tokens) only ever travel in environment variables of one child
# or on stdin: never in a command line (visible in `ps`), a log line or a file other than their own.
# shellcheck shell=bash

# One line on stderr, then exit (1: a refused precondition; the callers use 2 for bad usage).
die() {
  printf '%s: error: %s\n' "${PROG:-runner}" "$1" >&2
  exit "${2:-1}"
}

note() {
  printf '%s: %s\n' "${PROG:-runner}" "$*"
}

# A command as a shell would read it back, for logs and the dry run.
shell_quote() {
  local out="" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      out+=" $arg"
    else
      out+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '%s\n' "${out# }"
}

# The REST API base for a runner URL: api.github.com for github.com, /api/v3 on GitHub Enterprise
# Server; GITHUB_API_URL (as Actions names it) wins.
api_base() {
  local url=$1 host
  if [[ -n ${GITHUB_API_URL:-} ]]; then
    printf '%s\n' "${GITHUB_API_URL%/}"
    return
  fi
  host=${url#https://}
  host=${host%%/*}
  if [[ $host == github.com ]]; then
    printf 'https://api.github.com\n'
  else
    printf 'https://%s/api/v3\n' "$host"
  fi
}

# repos/OWNER/REPO, orgs/ORG or enterprises/NAME: where a runner URL registers runners.
api_scope() {
  local path=${1#https://}
  path=${path#*/}
  path=${path%/}
  case $path in
    enterprises/*/*) return 1 ;;
    enterprises/*) printf '%s\n' "$path" ;;
    */*/*) return 1 ;;
    */*) printf 'repos/%s\n' "$path" ;;
    ?*) printf 'orgs/%s\n' "$path" ;;
    *) return 1 ;;
  esac
}

# Check a runner URL: https://HOST/OWNER/REPO, https://HOST/ORG or https://HOST/enterprises/NAME.
valid_runner_url() {
  [[ $1 =~ ^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?/?$ ]]
}

# POST to the REST API with the token in API_TOKEN; prints the JSON answer. The Authorization
# header goes to curl on stdin (--config -), so the token is not in curl's command line.
api_post() {
  local url=$1
  [[ $API_TOKEN =~ ^[A-Za-z0-9_.-]+$ ]] || die "the API token holds characters a GitHub token never has (a stray quote or space?)"
  printf 'header = "Authorization: Bearer %s"\n' "$API_TOKEN" |
    curl --config - --silent --show-error --fail-with-body --max-time 30 --request POST \
      --header "Accept: application/vnd.github+json" --header "X-GitHub-Api-Version: 2022-11-28" "$url"
}

# A fresh registration token (valid one hour) for RUNNER_URL, printed on stdout.
registration_token() {
  local scope answer
  scope=$(api_scope "$RUNNER_URL") || die "cannot tell repository from organization in $RUNNER_URL"
  answer=$(api_post "$(api_base "$RUNNER_URL")/$scope/actions/runners/registration-token") ||
    die "GitHub refused a registration token for $RUNNER_URL: $(printf '%s' "$answer" | head -c 300 | tr '\n' ' ')"
  printf '%s' "$answer" | "$JSON_PYTHON" -I -c 'import json, sys; print(json.load(sys.stdin)["token"])' ||
    die "GitHub's answer holds no registration token"
}

# The labels config.sh gets: the boards' kinds, targets and labels, minus out-of-service boards.
# Python runs isolated (-I: no current folder, user site or PYTHON* variables on its path).
board_labels() {
  local inventory=$1 python=$2 exclude_file=${3:-}
  local args=(-I -m explorer.boards.labels "$inventory")
  [[ -n $exclude_file ]] && args+=(--exclude-file "$exclude_file")
  "$python" "${args[@]}"
}
