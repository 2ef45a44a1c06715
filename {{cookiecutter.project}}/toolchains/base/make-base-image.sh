#!/usr/bin/env bash
# Build the base image every toolchain Dockerfile starts FROM: a minimal Debian rootfs made with
# debootstrap from a Debian mirror and turned into an image with `docker import`, because no image
# registry may be reachable (only Debian's package mirror). The tag names the pinned point release;
# the script refuses a mirror that serves another one, so a tag always means the same packages.
#
# Usage: make-base-image.sh [--force] [--print-tag]
# Env:   DEBIAN_MIRROR  mirror URL (default: the one apt on this machine uses for bookworm main;
#                       e.g. a snapshot.debian.org/archive/debian/<date> URL reproduces the pin forever)
#        DEBIAN_POINT_RELEASE  expected Release "Version" (default: the pin below)
#        EXPLORER_CACHE  where downloaded .debs are kept between runs (default ~/.cache/explorer)
# Idempotent: an existing image with the tag is reused and nothing is downloaded.
set -euo pipefail

SUITE=bookworm
POINT_RELEASE="${DEBIAN_POINT_RELEASE:-12.15}"   # bookworm's point release the pins were taken from
TAG="explorer/debian:${SUITE}-${POINT_RELEASE}"
# sha256 of the rootfs tar (= the image's single layer) as built on Debian 12 with debootstrap
# 1.0.128+nmu2+deb12u2: the tar is normalised (sorted, mtimes clamped to the Release date), so two
# builds of the same point release give the same layer. A different one is reported, not refused.
ROOTFS_SHA256=2893e7b28ec627e17a4db45acb8bb266ab1702204070b823a3f5d7f2ec11ef53

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --print-tag) echo "$TAG"; exit 0 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "make-base-image.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { echo "make-base-image: $*" >&2; }

if [[ $force == 0 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
  log "reusing $TAG"
  docker image inspect --format '{{.Id}}' "$TAG"
  exit 0
fi

for tool in debootstrap docker tar; do
  command -v "$tool" >/dev/null || { log "$tool not found (apt-get install debootstrap docker.io)"; exit 3; }
done
[[ $(id -u) == 0 ]] || { log "debootstrap needs root"; exit 3; }

machine_mirror() {
  # The URI apt already uses for "<suite> main" here (deb822 or one-line sources alike).
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null \
    | awk -v s="$SUITE" '$2 == s && $3 == "main" {print $1; exit}'
}
MIRROR="${DEBIAN_MIRROR:-$(machine_mirror)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
MIRROR="${MIRROR%/}"

# The mirror must serve the pinned point release (checked again on the Release file debootstrap verified).
check_release() {
  local version
  version=$(awk '/^Version:/ {print $2; exit}' "$1")
  if [[ "$version" != "$POINT_RELEASE" ]]; then
    log "$MIRROR serves $SUITE $version, the pin is $POINT_RELEASE: set DEBIAN_MIRROR to a snapshot of" \
        "$POINT_RELEASE, or move the pin (this script, every Dockerfile's BASE_IMAGE and its =versions)"
    exit 4
  fi
}

work=$(mktemp -d "${TMPDIR:-/tmp}/explorer-base.XXXXXX")
cleanup() {
  # debootstrap may leave /proc or /sys mounted inside the target when it fails.
  for m in proc sys dev/pts dev; do umount -l "$work/root/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# Fail fast on a mirror that moved on (debootstrap's own, signature-checked Release is checked again below).
if command -v curl >/dev/null && curl -fsS --max-time 60 -o "$work/Release.mirror" "$MIRROR/dists/$SUITE/Release"; then
  check_release "$work/Release.mirror"
fi

cache="${EXPLORER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/explorer}/debootstrap-$SUITE-$POINT_RELEASE"
mkdir -p "$cache"

log "debootstrap $SUITE (minbase) from $MIRROR"
started=$(date +%s)
debootstrap --variant=minbase --arch=amd64 --merged-usr --keep-debootstrap-dir \
  --cache-dir="$cache" "$SUITE" "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 5; }

release=$(ls "$work"/root/var/lib/apt/lists/*_dists_"${SUITE}"_Release "$work"/root/debootstrap/*Release 2>/dev/null | head -n1 || true)
if [[ -n "$release" ]]; then
  cp "$release" "$work/Release" && release="$work/Release"
  check_release "$release"
  log "mirror serves $SUITE $POINT_RELEASE ($(awk -F': ' '/^Date:/ {print $2; exit}' "$release"))"
else
  log "no Release file kept by debootstrap; cannot check the point release"; exit 4
fi

root="$work/root"
# A container needs no docs, caches or logs; dropping them also keeps the layer stable between builds.
cat >"$root/etc/dpkg/dpkg.cfg.d/explorer-minimal" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/doc/*/copyright
EOF
cat >"$root/etc/apt/apt.conf.d/explorer-container" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
if [[ "$MIRROR" == *snapshot.debian.org* ]]; then
  echo 'Acquire::Check-Valid-Until "false";' >>"$root/etc/apt/apt.conf.d/explorer-container"
fi
echo "deb $MIRROR $SUITE main" >"$root/etc/apt/sources.list"
rm -rf "$root/debootstrap" "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
  "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/ldconfig/aux-cache "$root"/var/log/*.log \
  "$root"/var/log/apt/* "$root"/etc/*- "$root"/var/lib/dpkg/*-old
: >"$root/etc/machine-id" 2>/dev/null || true

epoch=$(date -d "$(awk -F': ' '/^Date:/ {print $2; exit}' "$release")" +%s)
tar --format=gnu --numeric-owner --sort=name --mtime="@$epoch" --clamp-mtime -C "$root" -cf "$work/rootfs.tar" .
rootfs_sha=$(sha256sum "$work/rootfs.tar" | cut -d' ' -f1)

previous=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV DEBIAN_FRONTEND=noninteractive' \
  --change 'CMD ["bash"]' \
  --message "debootstrap --variant=minbase $SUITE $POINT_RELEASE from $MIRROR; rootfs sha256:$rootfs_sha" \
  "$work/rootfs.tar" "$TAG" >/dev/null
[[ -z "${EXPLORER_BASE_KEEP:-}" ]] || cp "$work/rootfs.tar" "$EXPLORER_BASE_KEEP"

current=$(docker image inspect --format '{{.Id}}' "$TAG")
if [[ -n "$previous" && "$previous" != "$current" ]]; then
  docker rmi "$previous" >/dev/null 2>&1 || true   # still used by a toolchain image: docker keeps it
fi
if [[ "$rootfs_sha" != "$ROOTFS_SHA256" && "$POINT_RELEASE" == 12.15 && -z "${DEBIAN_MIRROR:-}" ]]; then
  log "note: rootfs sha256:$rootfs_sha differs from the recorded sha256:$ROOTFS_SHA256"
fi
log "built $TAG in $(( $(date +%s) - started )) s (rootfs layer sha256:$rootfs_sha)"
docker image inspect --format '{{.Id}}' "$TAG"
