#!/usr/bin/env bash
# The test command: set up, lint, type-check, then every test (unit, integration with real
# servers and kernels, Node compatibility, browser). Skips are failures: a test that needs a
# service must find it here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "test: ruff"
python3 -m ruff check jupyter_interop tests benchmarks
echo "test: mypy"
python3 -m mypy jupyter_interop
echo "test: import layering"
lint-imports

mkdir -p test-artifacts
echo "test: pytest"
python3 -m pytest tests -p no:cacheprovider -rfEs --junitxml=test-artifacts/junit.xml \
    --cov=jupyter_interop --cov-config=scripts/coverage.cfg --cov-report=term \
    --cov-report=xml:test-artifacts/coverage.xml "$@"
python3 - <<'PY'
import sys
import xml.etree.ElementTree as ET

root = ET.parse("test-artifacts/junit.xml").getroot()
suites = [root] if root.tag == "testsuite" else list(root)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
ran = sum(int(s.get("tests", 0)) for s in suites)
if ran == 0:
    sys.exit("test: no test ran")
if skipped:
    sys.exit(f"test: {skipped} test(s) were skipped; every test must run here")
PY
echo "test: coverage $(python3 -m coverage report --rcfile=scripts/coverage.cfg --format=total)% \
of jupyter_interop (this process and every Python process the tests started)"
