#!/usr/bin/env bash
# Runs a command with the tools that scripts/bootstrap.sh resolved (Node, pnpm, temporal, ...).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -f "$repo/.keel/tools.env" ]; then
  echo "keel: tools are not set up yet. Fix: run 'npm run setup' (bash scripts/bootstrap.sh) once." >&2
  exit 1
fi
# shellcheck source=/dev/null
. "$repo/.keel/tools.env"
exec "$@"
