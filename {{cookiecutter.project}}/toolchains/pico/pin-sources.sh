#!/bin/sh
# Print the sha256 of every source archive the Dockerfile downloads, for its *_SHA256 build args.
# Run on a machine with network access after changing a version (GitHub tag archives are stable).
# Usage: pin-sources.sh [Dockerfile]
set -eu
dockerfile=${1:-$(dirname "$0")/Dockerfile}
arg() { sed -n "s/^ARG $1=//p" "$dockerfile"; }
for name in PICO_SDK PICOTOOL TINYUSB TFLM; do
  version=$(arg "${name}_VERSION")
  url=$(arg "${name}_URL" | sed "s/\${${name}_VERSION}/$version/g")
  sha=$(curl -fsSL "$url" | sha256sum | cut -d' ' -f1)
  echo "ARG ${name}_SHA256=$sha   # $url"
done
