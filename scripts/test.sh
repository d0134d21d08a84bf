#!/bin/sh
# The README's test command: installs what the tests need, then runs ruff and pytest.
#
# System tools by apt-get, each checked on its own and only the missing ones installed:
# LibreOffice Calc and Debian's python3-uno (the real client the tests drive), poppler-utils
# (PDF page checks), the Noto CJK fonts (Japanese in the PDFs) and python3-venv. The package
# and its test extras go into the project's own .venv: never the system pip, which Debian's
# externally managed python3 refuses (PEP 668). PYTHON picks the interpreter for the venv.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

missing=""
command -v soffice >/dev/null 2>&1 || missing="$missing libreoffice-calc-nogui"
/usr/bin/python3 -c "import uno" >/dev/null 2>&1 || missing="$missing python3-uno"
{ command -v pdftoppm && command -v pdfinfo; } >/dev/null 2>&1 || missing="$missing poppler-utils"
fc-list : family 2>/dev/null | grep -q "Noto Sans CJK JP" || missing="$missing fonts-noto-cjk"
if [ ! -x .venv/bin/python ] && ! "$PYTHON" -c "import ensurepip" >/dev/null 2>&1; then
    missing="$missing python3-venv"  # Debian keeps ensurepip, which venv needs, in python3-venv
fi

if [ -n "$missing" ]; then
    echo "scripts/test.sh: 足りないパッケージを apt-get で入れます:$missing" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "scripts/test.sh: root 権限で apt-get install$missing を実行してから、もう一度実行してください。" >&2
            exit 1
        fi
        SUDO="sudo"
    fi
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/python -m ruff check sheettool tests scripts
.venv/bin/python -m pytest -q "$@"
