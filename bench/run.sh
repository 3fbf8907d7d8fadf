#!/usr/bin/env bash
# Reproduces the end-to-end figures in docs/benchmarks.md:
#   bench/run.sh [LINES] [RUNS]
# builds jobrun, writes a file of LINES lines of ~60 bytes, and runs
# bench/e2ebench RUNS times, then prints the median of each figure and the
# peak RSS of an ingest run (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000}
runs=${2:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=1 go build -o "$tmp/jobrun" ./cmd/jobrun
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
