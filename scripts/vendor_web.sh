#!/usr/bin/env bash
# Vendors the web UI's one third-party asset, uPlot (charts), into web/vendor/ from npm at a pinned
# version, checked against its published integrity hash. The result is committed: the build never
# reaches the network. Run again only to change the version.
set -euo pipefail

UPLOT_VERSION=1.6.32
cd "$(dirname "$0")/.."
dest=web/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expected=$(npm view "uplot@${UPLOT_VERSION}" dist.integrity)
(cd "$tmp" && npm pack --silent "uplot@${UPLOT_VERSION}" >/dev/null)
tarball="$tmp/uplot-${UPLOT_VERSION}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$expected" != "$actual" ]; then
  echo "vendor_web: uplot-${UPLOT_VERSION}.tgz integrity $actual, expected $expected" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp"
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$tmp/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$tmp/package/LICENSE" "$dest/uPlot.LICENSE"
echo "uplot ${UPLOT_VERSION} ${expected}" > "$dest/VERSIONS"
echo "vendor_web: uPlot ${UPLOT_VERSION} -> $dest"
