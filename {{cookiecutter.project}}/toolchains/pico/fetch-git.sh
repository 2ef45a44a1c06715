#!/bin/sh
# Fetch one pinned source as the git commit with this full SHA, refuse anything else, check it out into DEST.
# git checks every object it receives against its hash, so a full commit SHA pins the whole tree.
# Usage: fetch-git.sh NAME REPO COMMIT DEST     (used by the Dockerfile; needs git)
set -eu
name=$1 repo=$2 commit=$3 dest=$4
case "$commit" in
  *[!0-9a-f]*|"") echo "fetch-git: $name has no commit pin ($commit): run pin-sources.sh on a networked machine" >&2; exit 2 ;;
esac
[ ${#commit} -eq 40 ] || { echo "fetch-git: $name: a commit pin is the full 40-digit SHA, not ${#commit} digits" >&2; exit 2; }
mkdir -p "$dest"
cd "$dest"
git init -q
git fetch -q --depth 1 "$repo" "$commit" \
  || { echo "fetch-git: $name: cannot fetch commit $commit from $repo" >&2; exit 3; }
git -c advice.detachedHead=false checkout -q FETCH_HEAD
head=$(git rev-parse HEAD)
[ "$head" = "$commit" ] || { echo "fetch-git: $name: $repo gave commit $head, not the pinned $commit" >&2; exit 3; }
rm -rf .git
