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
# MUTATE_DIR (the staging folder, default var/mutate), MUTATE_SAMPLE (0: every mutant; N: a
# uniform random sample of N mutants, seed MUTATE_SEED (default 1), whose kill rate estimates the
# score when every mutant would take hours: the five modules make several thousand mutants and
# each reruns the tests that call its function).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
STAGE=${MUTATE_DIR:-$ROOT/var/mutate}
MODULES=${MUTATE_MODULES:-"li2/model.py li2/optim.py li2/trainer.py li2/timeline.py li2/scaling/*"}
CHILDREN=${MUTATE_CHILDREN:-2}
SAMPLE=${MUTATE_SAMPLE:-0}
SEED=${MUTATE_SEED:-1}

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
names=()
if [ "$SAMPLE" -gt 0 ]; then
  # Generate the mutants only (a filter that matches none stops mutmut before any test runs),
  # then draw the sample from the full list.
  "$BIN/mutmut" run --max-children "$CHILDREN" "no-such-mutant" >/dev/null 2>&1 || true
  mapfile -t names < <("$BIN/mutmut" results --all true 2>/dev/null | awk -F: '{gsub(/ /, "", $1); print $1}' \
    | "$BIN/python" -c "import random, sys; n = [l.strip() for l in sys.stdin if l.strip()]; \
random.seed($SEED); print(len(n), file=sys.stderr); print('\n'.join(sorted(random.sample(n, min($SAMPLE, len(n))))))")
  echo "sampled ${#names[@]} mutants"
fi
"$BIN/mutmut" run --max-children "$CHILDREN" "${names[@]}" || true
echo
echo "== mutation score (mutants that ran; a sample when MUTATE_SAMPLE > 0) =="
"$BIN/mutmut" results --all true 2>/dev/null | "$BIN/python" -c '
import collections, math, sys
status = collections.Counter(line.rsplit(":", 1)[1].strip() for line in sys.stdin if ":" in line)
status.pop("not checked", None)
ran = sum(status.values())
caught = status["killed"] + status["timeout"]  # a mutant that hangs the tests is caught too
print(dict(status))
if ran:
    p = caught / ran
    half = 1.96 * math.sqrt(p * (1 - p) / ran)
    print(f"score: {caught}/{ran} = {p:.1%} caught (95 % interval {max(0, p - half):.1%} to {min(1, p + half):.1%})")
'
echo
echo "== surviving mutants (inspect one with: cd $STAGE && $BIN/mutmut show NAME) =="
"$BIN/mutmut" results 2>/dev/null | grep -E "survived|no tests" || true
