#!/usr/bin/env bash
# Reproduces the figures in docs/benchmarks.md:
#   bench/run.sh [LINES] [RUNS]
# builds jobrun, then
#  - end to end (BENCH=e2e): writes a file of LINES lines of ~60 bytes, runs
#    bench/e2ebench RUNS times, prints the median of each figure and the peak
#    RSS of an ingest run (/usr/bin/time);
#  - fan-out (BENCH=fanout): runs bench/fanout over the scenarios of issue 12,
#    printing the load average before each, then a summary table.
#  - WAL (BENCH=wal): runs bench/walbench WAL_RUNS times (3): jobrun serve,
#    WAL_AGENTS agents (2) each printing WAL_LINES lines (2000000), WAL_VIEWERS
#    viewers per job (40) replaying from after=0, dropped and reconnected
#    within WAL_CHURN (2s); prints the WAL's size while they push, 15 s
#    after (viewers still replaying) and once they stopped. WAL_BASE=COMMIT
#    also builds that commit (git archive) and alternates runs of both.
# BENCH=all (the default) does e2e and fan-out. The fan-out sizes come from these
# variables (defaults: the issue's table); FANOUT_QUICK=1 shrinks them all
# for a run of a minute or two:
#   FANOUT_MODES="exec serve"   servers to measure (serve: jobrun serve + an agent)
#   FANOUT_SECONDS=30           length of the rate-limited jobs
#   FANOUT_VIEWERS=1000         viewers at 1 k and 10 k lines/s
#   FANOUT_FAST_RATE=10000      the second scenario's lines/s
#   FANOUT_MANY=5000            viewers of the 20 lines/s job
#   FANOUT_MOST=10000           viewers of the same job, the largest run
#   FANOUT_SEQ_LINES=1000000    one viewer, seq 1 N
#   FANOUT_STALLED=100          stalled viewers (isolation), FANOUT_ISO_RUNS=3 pairs
#   FANOUT_REPLAY_LINES=1000000 FANOUT_REPLAY_VIEWERS=50
#   FANOUT_PERF=1               also a CPU profile (perf) of exec, 1000 viewers at 1 k lines/s
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000}
runs=${2:-5}
what=${BENCH:-all}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=1 go build -o "$tmp/jobrun" ./cmd/jobrun

if [ "$what" = all ] || [ "$what" = e2e ]; then
  go build -o "$tmp/e2ebench" ./bench/e2ebench
  awk -v n="$lines" 'BEGIN { for (i = 1; i <= n; i++) printf "%08d the quick brown fox jumps over the lazy dog %08d\n", i, i }' > "$tmp/input.txt"
  echo "input: $lines lines, $(wc -c < "$tmp/input.txt") bytes"
  for i in $(seq 1 "$runs"); do
    "$tmp/e2ebench" -bin "$tmp/jobrun" -file "$tmp/input.txt" -lines "$lines"
  done | tee "$tmp/results"
  for key in ingest_lines_per_s live_lines_per_s replay_seconds replay_server_cpu_seconds live_peak_rss_kib; do
    sed -n "s/.*$key=\([0-9.]*\).*/\1/p" "$tmp/results" | sort -g | awk -v k="$key" '{ a[NR] = $1 } END { print "median " k ": " a[int((NR + 1) / 2)] }'
  done
  /usr/bin/time -f "peak RSS of jobrun exec --quiet -- cat (KiB): %M" \
    "$tmp/jobrun" exec --quiet --linger 0 --addr 127.0.0.1:0 --db "$tmp/rss.db" -- cat "$tmp/input.txt"
fi

if [ "$what" = wal ]; then
  go build -o "$tmp/walbench" ./bench/walbench
  bins=$tmp/jobrun
  if [ -n "${WAL_BASE:-}" ]; then
    mkdir "$tmp/base"
    git archive "$WAL_BASE" | tar -x -C "$tmp/base"
    (cd "$tmp/base" && CGO_ENABLED=1 go build -o "$tmp/jobrun-base" ./cmd/jobrun)
    bins="$tmp/jobrun-base $tmp/jobrun"
  fi
  for i in $(seq 1 "${WAL_RUNS:-3}"); do
    for bin in $bins; do
      echo "== $(basename "$bin") run $i (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
      "$tmp/walbench" -bin "$bin" -agents "${WAL_AGENTS:-2}" -lines "${WAL_LINES:-2000000}" \
        -viewers "${WAL_VIEWERS:-40}" -churn "${WAL_CHURN:-2s}" -hold 15s -tail 15s
    done
  done
fi

if [ "$what" = all ] || [ "$what" = fanout ]; then
  if [ "${FANOUT_QUICK:-0}" = 1 ]; then
    : "${FANOUT_SECONDS:=5}" "${FANOUT_VIEWERS:=100}" "${FANOUT_FAST_RATE:=2000}" "${FANOUT_MANY:=300}" \
      "${FANOUT_MOST:=500}" "${FANOUT_SEQ_LINES:=200000}" "${FANOUT_STALLED:=10}" "${FANOUT_ISO_RUNS:=1}" \
      "${FANOUT_REPLAY_LINES:=200000}" "${FANOUT_REPLAY_VIEWERS:=5}"
  fi
  modes=${FANOUT_MODES:-exec serve}
  secs=${FANOUT_SECONDS:-30}
  viewers=${FANOUT_VIEWERS:-1000}
  fast=${FANOUT_FAST_RATE:-10000}
  many=${FANOUT_MANY:-5000}
  most=${FANOUT_MOST:-10000}
  seqlines=${FANOUT_SEQ_LINES:-1000000}
  stalled=${FANOUT_STALLED:-100}
  isoruns=${FANOUT_ISO_RUNS:-3}
  rlines=${FANOUT_REPLAY_LINES:-1000000}
  rviewers=${FANOUT_REPLAY_VIEWERS:-50}
  ulimit -n "$(ulimit -Hn)"
  go build -o "$tmp/fanout" ./bench/fanout
  out=$tmp/fanout.txt
  : > "$out"
  # fanout LABEL FLAGS...: one run, after the load average.
  fanout() {
    local label=$1
    shift
    echo "== $label (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$tmp/fanout" -bin "$tmp/jobrun" -label "$label" "$@" | tee -a "$out" || echo "== $label failed"
  }
  for mode in $modes; do
    fanout "$mode/$viewers-viewers-1k" -mode "$mode" -viewers "$viewers" -rate 1000 -burst 10 -duration "${secs}s"
    fanout "$mode/$viewers-viewers-$fast" -mode "$mode" -viewers "$viewers" -rate "$fast" -burst $((fast / 100)) -duration "${secs}s"
    fanout "$mode/$many-viewers-20" -mode "$mode" -viewers "$many" -rate 20 -burst 4 -duration "${secs}s"
    fanout "$mode/$most-viewers-20" -mode "$mode" -viewers "$most" -rate 20 -burst 4 -duration "${secs}s"
  done
  fanout "exec/1-viewer-seq" -viewers 1 -rate 0 -lines "$seqlines" -format seq
  for i in $(seq 1 "$isoruns"); do
    fanout "exec/isolation-0-stalled" -viewers 1 -rate 0 -lines "$seqlines" -format seq
    fanout "exec/isolation-$stalled-stalled" -viewers 1 -stalled "$stalled" -rate 0 -lines "$seqlines" -format seq
  done
  fanout "exec/replay-1" -replay -viewers 1 -rate 0 -lines "$rlines"
  fanout "exec/replay-$rviewers" -replay -viewers "$rviewers" -rate 0 -lines "$rlines"
  if [ "${FANOUT_PERF:-0}" = 1 ]; then
    fanout "exec/profile-$viewers-viewers-1k" -viewers "$viewers" -rate 1000 -burst 10 -duration "${secs}s" -perf "$tmp/perf.data"
    # A flat profile, and the share of samples in the garbage collector.
    perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 1 2>/dev/null | grep '%' | head -30 || true
    perf script -i "$tmp/perf.data" -F ip,sym 2>/dev/null | awk 'BEGIN { RS = "" } { n++ } /gcDrain|gcBgMarkWorker|markroot|gcAssist|bgsweep|wbBufFlush/ { gc++ }
      END { if (n) printf "samples in the garbage collector: %.0f%% of %d\n", 100 * gc / n, n }' || true
  fi

  echo
  echo "fan-out summary (latency ms; lines delivered/expected; closed viewers by close code; server RSS in MiB, KiB per connected viewer)"
  awk '
    function get(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
    BEGIN { printf "%-28s %8s %8s %8s %9s %9s %22s %8s %8s %8s %8s %6s %s\n", "scenario", "p50", "p99", "max", "lines/s", "replay", "delivered/expected", "closed", "peakRSS", "KiB/vw", "gen_s", "cpu_s", "load" }
    {
      replay = get("replay_max_seconds"); if (replay == "") replay = "-"
      printf "%-28s %8.1f %8.1f %8.1f %9.0f %9s %22s %8s %8.1f %8.1f %8.2f %6.1f %s\n", get("label"), get("latency_p50_ms"), get("latency_p99_ms"),
        get("latency_max_ms"), get("lines_per_s"), replay, get("lines_delivered") "/" get("lines_expected"),
        (get("closed_by") == "" ? "0" : get("closed_by")), get("peak_rss_kib") / 1024, get("per_viewer_kib"),
        get("gen_runtime_seconds"), get("server_cpu_seconds"), get("load_at_start")
    }' "$out"
  # The isolation figure: median runtime of the child with and without stalled viewers.
  for label in isolation-0-stalled "isolation-$stalled-stalled"; do
    grep "label=exec/$label " "$out" | sed -n 's/.*gen_runtime_seconds=\([0-9.]*\).*/\1/p' | sort -g |
      awk -v k="$label" '{ a[NR] = $1 } END { if (NR) print "median child runtime, " k ": " a[int((NR + 1) / 2)] " s" }'
  done
fi
