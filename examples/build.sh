#!/usr/bin/env bash
# An example job for jobrun: about 20 seconds of a pretend build, with
# stdout and stderr, colours, a redrawn progress line, the build's own
# progress reported with ::progress lines (what `jobrun progress` prints;
# pages hide them), and a failure-free end.
# JOBRUN_EXAMPLE_STEPS (default 20, 0.8 s each) makes it shorter or longer:
# the page tests run it with a few steps.
set -euo pipefail
steps=${JOBRUN_EXAMPLE_STEPS:-20}
if ! [[ $steps =~ ^[1-9][0-9]*$ ]]; then
  echo "JOBRUN_EXAMPLE_STEPS must be a positive whole number, not '${steps}'" >&2
  exit 2
fi
echo "building example project (${steps} steps)"
for i in $(seq 1 "$steps"); do
  printf '\033[1;34m[%d/%d]\033[0m compiling module_%02d.go\n' "$i" "$steps" "$i"
  printf '::progress %d/%d compiling module_%02d.go\n' "$((i - 1))" "$steps" "$i"
  for p in 25 50 75 100; do
    printf '  linking module_%02d %3d%%\r' "$i" "$p"
    sleep 0.2
  done
  printf '\n'
  if (( i % 5 == 0 )); then
    echo "warning: module_$(printf %02d "$i") has unused imports" >&2
  fi
done
echo "::progress ${steps}/${steps} done"
echo "build finished: ${steps} modules, 0 errors"
