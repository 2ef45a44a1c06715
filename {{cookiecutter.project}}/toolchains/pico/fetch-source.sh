#!/bin/sh
# Download one pinned source archive, refuse it unless its sha256 matches, unpack it into DEST.
# Usage: fetch-source.sh NAME URL SHA256 DEST     (used by the Dockerfile; needs curl and tar)
set -eu
name=$1 url=$2 sha=$3 dest=$4
case "$sha" in
  *[!0-9a-f]*|"") echo "fetch-source: $name has no sha256 pin ($sha): run pin-sources.sh on a networked machine" >&2; exit 2 ;;
esac
[ ${#sha} -eq 64 ] || { echo "fetch-source: $name: a sha256 has 64 hex digits, not ${#sha}" >&2; exit 2; }
file=/tmp/$name.tar.gz
curl -fsSL --retry 3 -o "$file" "$url"
echo "$sha  $file" | sha256sum -c -
mkdir -p "$dest"
tar -xzf "$file" -C "$dest" --strip-components=1
rm -f "$file"
