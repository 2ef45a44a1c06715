#!/bin/sh
# Print the pins of every source the Dockerfile fetches, for its build args: the sha256 of each
# archive (*_URL -> *_SHA256) and the full commit SHA of each git source (*_REPO + *_VERSION, a tag
# or an abbreviated commit -> *_COMMIT). Run on a machine with network access after changing a
# version, and compare with the recorded values before writing them into the Dockerfile.
# Usage: pin-sources.sh [Dockerfile]
set -eu
dockerfile=${1:-$(dirname "$0")/Dockerfile}
arg() { sed -n "s/^ARG $1=//p" "$dockerfile"; }
names=$(sed -n 's/^ARG \([A-Z0-9_]*\)_VERSION=.*/\1/p' "$dockerfile")
for name in $names; do
  version=$(arg "${name}_VERSION")
  url=$(arg "${name}_URL" | sed "s/\${${name}_VERSION}/$version/g")
  repo=$(arg "${name}_REPO")
  if [ -n "$url" ]; then
    sha=$(curl -fsSL "$url" | sha256sum | cut -d' ' -f1)
    echo "ARG ${name}_SHA256=$sha   # $url"
  elif [ -n "$repo" ]; then
    # A tag: the commit it points at (the peeled ^{} line of an annotated tag); else an abbreviated
    # commit, resolved in a clone without file contents.
    tags=$(git ls-remote --tags "$repo" "refs/tags/$version" "refs/tags/$version^{}")
    commit=$(echo "$tags" | awk '$2 ~ /\^\{\}$/ { print $1 }')
    [ -n "$commit" ] || commit=$(echo "$tags" | awk 'NR == 1 { print $1 }')
    if [ -z "$commit" ]; then
      tmp=$(mktemp -d)
      git clone -q --filter=blob:none --no-checkout "$repo" "$tmp"
      commit=$(git -C "$tmp" rev-parse --verify "$version^{commit}")
      rm -rf "$tmp"
    fi
    echo "ARG ${name}_COMMIT=$commit   # $repo $version"
  fi
done
