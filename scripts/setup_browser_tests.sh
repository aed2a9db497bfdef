#!/usr/bin/env bash
# Set up the browser test of the web page (tests/test_serve_browser.py):
#   Debian's Chromium from apt and the Playwright Python driver from PyPI.
# Playwright drives /usr/bin/chromium through `executable_path`; no browser is ever downloaded
# (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1, and `playwright install` is never run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
"$PY" -m pip install -q "$(grep -E '^playwright==' requirements-serve.txt)"
echo "browser tests ready: $(chromium --version 2>/dev/null || echo 'chromium missing')"
