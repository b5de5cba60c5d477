#!/usr/bin/env bash
# `make mutate`: mutation testing of the science core with mutmut.
#
# mutmut rewrites each function of the mutated modules in small ways (a `<` for a `<=`, a constant
# changed, an argument dropped) and reruns the tests that call that function; a mutant that no test
# kills is a behaviour no test checks. docs/testing.md records the score and the survivors.
#
# mutmut imports the code under test from its `mutants/` copy, which it puts first on sys.path. Our
# core lives in core/li2 and is installed editable, so the mutated copy would never be imported
# from the repo root. The script therefore stages a small tree under var/mutate/ holding li2/ at its
# top, the core and analysis tests that exercise it, and a pyproject.toml that names the modules to
# mutate. Nothing in the repo is modified.
#
# Settings: MUTATE_MODULES (space-separated paths under li2/, default: model, optim, trainer,
# timeline and the scaling package), MUTATE_CHILDREN (parallel mutants, default 2),
# MUTATE_DIR (the staging folder, default var/mutate).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
STAGE=${MUTATE_DIR:-$ROOT/var/mutate}
MODULES=${MUTATE_MODULES:-"li2/model.py li2/optim.py li2/trainer.py li2/timeline.py li2/scaling/*"}
CHILDREN=${MUTATE_CHILDREN:-2}

rm -rf "$STAGE"
mkdir -p "$STAGE/tests"
cp -r core/li2 "$STAGE/li2"
# The tests that exercise the mutated modules; the top-level conftest gives the server fixtures.
cp tests/conftest.py "$STAGE/tests/"
cp -r tests/core tests/analysis "$STAGE/tests/"
rm -f "$STAGE/tests/core/test_gpu.py" "$STAGE/tests/analysis/test_plots.py"
cp -r examples "$STAGE/"  # the reference run's stored curves, read by tests/analysis
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +

only=""
for m in $MODULES; do only="$only\"$m\", "; done
cat > "$STAGE/pyproject.toml" <<EOF
[tool.mutmut]
source_paths = ["li2"]
only_mutate = [${only%, }]
# torch is not fork-safe after the test run that collects statistics: fork from a clean server.
process_isolation = "forkserver"
also_copy = ["examples"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]
pytest_add_cli_args_test_selection = ["tests"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "--import-mode=importlib"
markers = ["slow: long tests", "gpu: needs CUDA", "postgres: needs PostgreSQL", "redis: needs Redis"]
EOF

cd "$STAGE"
"$BIN/mutmut" run --max-children "$CHILDREN" || true
"$BIN/mutmut" export-cicd-stats >/dev/null 2>&1 || true
echo
echo "== mutation score (mutants/mutmut-cicd-stats.json) =="
cat mutants/mutmut-cicd-stats.json 2>/dev/null || true
echo
echo "== surviving mutants (inspect one with: cd $STAGE && $BIN/mutmut show NAME) =="
"$BIN/mutmut" results 2>/dev/null | grep -E "survived|no tests" || true
