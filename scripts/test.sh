#!/bin/sh
# Installs what the tests need (LibreOffice Calc, the package with its test extras) and runs them.
set -eu
cd "$(dirname "$0")/.."

if ! command -v soffice >/dev/null 2>&1 || ! /usr/bin/python3 -c "import uno" >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        libreoffice-calc-nogui python3-uno fonts-noto-cjk poppler-utils >/dev/null
fi

python3 -m pip install -q -e '.[test]'
python3 -m ruff check sheettool tests scripts
python3 -m pytest -q "$@"
