#!/usr/bin/env bash
# The README's test command (`npm test`): bootstrap with the test servers, lint, typecheck, then
# every test (unit tests, and integration tests against real servers the harness starts).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash scripts/bootstrap.sh --test
# shellcheck source=/dev/null
. .keel/tools.env

echo "test: biome check"
pnpm exec biome check .
echo "test: typecheck (tsc)"
pnpm exec tsc -p tsconfig.json
echo "test: vitest"
results=.keel/test-results.json
rm -f "$results"
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
# Vitest's summary is not one that CI tools read, so close with the plain 'N passed, N failed' line.
if [ -f "$results" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$results"
fi
echo "test: the Python trainer SDK (pytest)"
PYTHONPATH="$KEEL_PYTEST_PATH" python3 -m pytest sdk/python/tests -q || status=$?
exit "$status"
