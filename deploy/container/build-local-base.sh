#!/bin/sh
# Builds a stand-in for docker.io/library/node:20-bookworm-slim on a machine that reaches Debian's
# package mirror but no container registry: a minimal Debian 12 root filesystem (mmdebstrap,
# docs, man pages and locales left out as the slim images do) with this machine's Node 20 and npm
# laid out as the official image has them (/usr/local/bin/node, /usr/local/lib/node_modules/npm).
# It needs root, mmdebstrap and podman (apt-get install mmdebstrap podman), and Node 20 here.
#
#   deploy/container/build-local-base.sh [TAG]        (default localhost/ferry-node-base:20-bookworm-slim)
#   podman build --format docker --build-arg NODE_IMAGE=localhost/ferry-node-base:20-bookworm-slim \
#     -f deploy/Dockerfile -t ferry:dev .
set -eu

TAG=${1:-localhost/ferry-node-base:20-bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_BIN=$(command -v node)
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")

case "$("$NODE_BIN" --version)" in
  v20.*) ;;
  *) echo "build-local-base: needs Node 20 on this machine, found $("$NODE_BIN" --version)" >&2; exit 1 ;;
esac
[ -f "$NPM_DIR/bin/npm-cli.js" ] || { echo "build-local-base: npm not found at $NPM_DIR" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# minbase: essential packages only (a shell, coreutils, apt); passwd for useradd in the Dockerfile.
mmdebstrap --variant=minbase --include=passwd,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='mkdir -p "$1/usr/local/bin" "$1/usr/local/lib/node_modules"' \
  --customize-hook="copy-in $NODE_BIN /usr/local/bin" \
  --customize-hook="copy-in $NPM_DIR /usr/local/lib/node_modules" \
  --customize-hook='ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"' \
  --customize-hook='ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
  --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*' \
  bookworm "$work/rootfs.tar" "$MIRROR"

podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' \
  "$work/rootfs.tar" "$TAG"
echo "build-local-base: $TAG"
