# Shared by scripts/install and scripts/test: find a Python >= 3.11 and make the project venv.
# Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${AR_VENV:-$ROOT/.venv}

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "error: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

# System packages the project needs on Debian/Ubuntu. Installed only when running as root with apt.
APT_PACKAGES=(git python3-venv gcc libc6-dev util-linux openssh-client binutils bubblewrap procps
  python3.11 python3.11-venv libpython3.11)  # the last three: the release build (packaging/build)
# 32-bit probes of the red-team suite (int 0x80 from a real i386 binary) need multilib on x86_64.
[ "$(uname -m)" = x86_64 ] && APT_PACKAGES+=(gcc-multilib)

ensure_system_packages() {
  local missing=() pkg
  command -v dpkg-query >/dev/null 2>&1 || return 0
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # A release without one of them (e.g. no python3.11 on a newer Ubuntu) must not stop the rest.
    local available=()
    for pkg in "${missing[@]}"; do
      if apt-cache show "$pkg" >/dev/null 2>&1; then
        available+=("$pkg")
      else
        echo "warning: $pkg is not available from apt here; the steps needing it will say so" >&2
      fi
    done
    [ ${#available[@]} -eq 0 ] && return 0
    echo "installing system packages: ${available[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${available[@]}" >/dev/null
  else
    echo "warning: missing system packages (install them as root): ${missing[*]}" >&2
  fi
}

make_venv() {
  local extras=$1 python
  python=$(find_python) || return 1
  if [ ! -x "$VENV/bin/python" ]; then
    "$python" -m venv "$VENV" || {
      echo "error: could not create a virtualenv; on Debian/Ubuntu: apt-get install python3-venv" >&2
      return 1
    }
  fi
  # Every dependency, the dev tools and the build backend come from the lock, each file checked
  # against the sha256 PyPI published for its pinned version; the project itself is then built
  # from the checked-out source by that backend, with nothing more fetched (hash-checking mode
  # refuses an editable requirement, hence two steps). $extras only names what the project asks
  # for: the lock holds the dev tools either way.
  # closes: a dependency wheel swapped on the index or a mirror at its pinned version being
  # installed, and run as root by CI or an operator, with only its version checked (F94).
  local lock=$ROOT/requirements/lock.txt pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  [ -f "$lock" ] || { echo "error: $lock is missing (packaging/freeze-lock)" >&2; return 1; }
  "${pip[@]}" --require-hashes -r "$lock"
  "${pip[@]}" --no-deps --no-build-isolation -e "$ROOT$extras"
}
