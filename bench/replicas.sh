#!/usr/bin/env bash
# Reproduces the several-servers figures in docs/benchmarks.md:
#   bench/replicas.sh [LINES] [RUNS] [SYNCHRONOUS_COMMIT]
# builds jobrun, writes a file of LINES lines of ~60 bytes, starts a
# throwaway PostgreSQL cluster (Debian's binaries, durable: fsync on,
# synchronous_commit as given, default on), and runs bench/replicabench
# RUNS times, each on a new database: 3 agents into one SQLite serve and
# into 2 replicas, the replay of a LINES-line job, live latency. It prints
# the median of each figure.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
runs=${2:-3}
sync=${3:-on}
tmp=$(mktemp -d)
pgdir=$(mktemp -d)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as=()
if [ "$(id -u)" = 0 ]; then
  as=(runuser -u postgres --) # initdb refuses root
  chown postgres "$pgdir"
fi
port=$((20000 + RANDOM % 20000))
cleanup() {
  "${as[@]}" "$pgbin/pg_ctl" stop -D "$pgdir/data" -m fast >/dev/null 2>&1 || true
  rm -rf "$tmp" "$pgdir"
}
trap cleanup EXIT
CGO_ENABLED=1 go build -o "$tmp/jobrun" ./cmd/jobrun
go build -o "$tmp/replicabench" ./bench/replicabench
chmod 755 "$tmp"
awk -v n="$lines" 'BEGIN { for (i = 1; i <= n; i++) printf "%08d the quick brown fox jumps over the lazy dog %08d\n", i, i }' > "$tmp/input.txt"
echo "input: $lines lines per agent, $(wc -c < "$tmp/input.txt") bytes; PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), synchronous_commit=$sync"
(cd "$pgdir" && "${as[@]}" "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null)
cat >> "$pgdir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pgdir'
port = $port
synchronous_commit = $sync
shared_buffers = 256MB
max_connections = 200
CONF
(cd "$pgdir" && "${as[@]}" "$pgbin/pg_ctl" start -w -D "$pgdir/data" -l "$pgdir/server.log" >/dev/null)
for i in $(seq 1 "$runs"); do
  "$pgbin/createdb" -h "$pgdir" -p "$port" -U postgres "bench$i"
  "$tmp/replicabench" -bin "$tmp/jobrun" -file "$tmp/input.txt" -lines "$lines" \
    -pg "postgres://postgres@127.0.0.1:$port/bench$i?sslmode=disable"
done | tee "$tmp/results"
for key in sqlite_ingest_lines_per_s postgres_ingest_lines_per_s ratio replay_seconds sqlite_live_p50_ms sqlite_live_p99_ms \
  same_replica_p50_ms same_replica_p99_ms cross_replica_p50_ms cross_replica_p99_ms; do
  sed -n "s/.*\b$key=\([0-9.]*\).*/\1/p" "$tmp/results" | sort -g | awk -v k="$key" '{ a[NR] = $1 } END { print "median " k ": " a[int((NR + 1) / 2)] }'
done
