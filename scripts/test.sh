#!/usr/bin/env bash
# Runs jobrun's whole test suite on a fresh machine: installs what the tests
# need when it is missing, then checks formatting, vet, and runs the tests
# with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

export CGO_ENABLED=1
export PATH="$PATH:/usr/local/go/bin"

need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v node >/dev/null || need+=(nodejs)
# The page tests drive Debian's Chromium (cmd/jobrun/browser_test.go); under
# CI=true they fail rather than skip without it.
[ -x /usr/bin/chromium ] || need+=(chromium)
# The reverse proxy tests run Debian's nginx as a child process
# (cmd/jobrun/nginx_test.go); under CI=true they fail rather than skip
# without it.
[ -x /usr/sbin/nginx ] || need+=(nginx)
# The PostgreSQL tests start a throwaway cluster of their own with Debian's
# server binaries (store/postgres/pgtest; never the system cluster the
# package may start on 5432); under CI=true they fail rather than skip
# without them.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test.sh: missing ${need[*]}; install them (apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 12m ./...
echo "== node --test (ui modules)"
node --test ui/jstest/
echo "== fuzz (short)"
go test -run='^$' -fuzz='^FuzzSplit$' -fuzztime=5s ./jobs/
go test -run='^$' -fuzz='^FuzzProgressParse$' -fuzztime=5s -fuzzminimizetime=2s ./jobs/progress/
# serve's whole front (API, pages, gate) over a real database: no 5xx for bad input, no panic
go test -run='^$' -fuzz='^FuzzServeRouter$' -fuzztime=5s -fuzzminimizetime=2s ./cmd/jobrun/
