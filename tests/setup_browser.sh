#!/bin/sh
# Installs what the browser tests (tests/test_site_browser.py) need, only where it is missing:
# Debian's chromium and chromium-driver, and Playwright for Python in the project's venv.
# Playwright drives /usr/bin/chromium; its own browser download is never used.
set -eu
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver
fi
if ! "$PYTHON" -c "import playwright" 2>/dev/null; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$PYTHON" -m pip install --quiet --disable-pip-version-check "playwright>=1.40"
fi
