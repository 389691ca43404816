#!/usr/bin/env bash
# Installs the browser tests' one npm package (playwright-core, the version pinned in
# tests/browser/package-lock.json) into tests/browser/node_modules. It drives Debian's chromium
# (scripts/setup.sh); no browser is downloaded. Without node and npm it says so and leaves the
# tests to skip themselves (ctest: browser.ui skipped). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/../tests/browser"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup_browser_tests: node or npm is missing; the browser tests will be skipped"
  exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "setup_browser_tests: node $(node --version) is older than 20; the browser tests will be skipped"
  exit 0
fi

# npm ci installs exactly the lock file; skipped when node_modules already holds that install.
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] &&
   node -e 'process.exit(require("./node_modules/playwright-core/package.json").version ===
            require("./package-lock.json").packages["node_modules/playwright-core"].version ? 0 : 1)'; then
  echo "setup_browser_tests: playwright-core $(node -p 'require("./node_modules/playwright-core/package.json").version') already installed"
  exit 0
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error
echo "setup_browser_tests: installed playwright-core $(node -p 'require("./node_modules/playwright-core/package.json").version')"
