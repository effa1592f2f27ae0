#!/usr/bin/env bash
# Run the test suite (sandbox and red-team included) as an unprivileged user (default: arci).
#
# usage: scripts/test-unprivileged.sh [REPO] [PYTEST ARGS...]
#
# As root: creates the user if missing, copies REPO (default: this checkout, working tree
# included, with the one-file build in dist/ if made, without .git/.venv/build/caches) to a
# world-readable directory owned by root, makes a
# venv there from Debian's /usr/bin/python3.11 (root's pyenv Python is not readable by other
# users), installs the project with its dev extras, and runs pytest as that user: by default
# the whole suite except the release smoke tests (so the sandbox, the red-team cases and all that
# is built on them are proven without root), or the PYTEST ARGS given. Exits with pytest's
# status. The copy stays root-owned on purpose: the unprivileged user must not be able to write
# the installed package on the host either.
#
# Environment: AR_UNPRIV_USER (arci), AR_UNPRIV_DIR (/var/tmp/ar-unpriv),
#              AR_UNPRIV_PYTHON (/usr/bin/python3.11).
set -euo pipefail

REPO=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
[ $# -gt 0 ] && shift
USER_NAME=${AR_UNPRIV_USER:-arci}
BASE=${AR_UNPRIV_DIR:-/var/tmp/ar-unpriv}
PYTHON=${AR_UNPRIV_PYTHON:-/usr/bin/python3.11}
TREE=$BASE/tree
VENV=$BASE/venv

if [ "$(id -u)" -ne 0 ]; then
  echo "error: $0 must run as root (it creates a user and switches to it)" >&2
  exit 2
fi
if [ ! -x "$PYTHON" ]; then
  echo "error: $PYTHON not found; on Debian: apt-get install python3.11 python3.11-venv" >&2
  exit 2
fi

if ! id -u "$USER_NAME" >/dev/null 2>&1; then
  echo "creating user $USER_NAME"
  useradd --create-home --shell /bin/bash "$USER_NAME"
fi

echo "copying $REPO to $TREE"
mkdir -p "$BASE"
chmod 755 "$BASE"
rm -rf "$TREE"
mkdir -p "$TREE"
tar -C "$REPO" -cf - \
  --exclude=./.git --exclude=./.venv --exclude='*/__pycache__' --exclude=./.mypy_cache \
  --exclude=./.pytest_cache --exclude=./.ruff_cache --exclude=./build \
  --exclude='*.tmp' . | tar -C "$TREE" -xf -
chown -R root:root "$TREE"
chmod -R a+rX,go-w "$TREE"

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV from $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
constraints=()
[ -f "$TREE/requirements/constraints.txt" ] && constraints=(-c "$TREE/requirements/constraints.txt")
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${constraints[@]}" -e "$TREE[dev]"
chmod -R a+rX,go-w "$VENV"

home=$(getent passwd "$USER_NAME" | cut -d: -f6)
[ $# -gt 0 ] || set -- tests --ignore=tests/release
quoted_args=$(printf ' %q' "$@")
echo "running the tests as $USER_NAME ($(id -u "$USER_NAME"))"
set +e
su -s /bin/bash "$USER_NAME" -c "cd $(printf %q "$TREE") && exec env -i HOME=$(printf %q "$home") \
  USER=$USER_NAME LOGNAME=$USER_NAME PATH=$(printf %q "$VENV/bin"):/usr/local/bin:/usr/bin:/bin \
  LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
  $(printf %q "$VENV/bin/python") -m pytest -p no:cacheprovider$quoted_args"
status=$?
set -e
echo "pytest as $USER_NAME exited with $status"
exit $status
