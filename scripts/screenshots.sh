#!/usr/bin/env bash
# Writes docs/screenshots/*.png (the README's pictures of the dashboard and
# a job page, light and dark, and a phone): runs demo jobs with the real
# binary and photographs the pages in headless Chromium. Not part of the
# test run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
[ -x /usr/bin/chromium ] || { echo "screenshots.sh: needs chromium (apt-get install -y chromium)" >&2; exit 1; }
go test ./cmd/jobrun -run '^TestScreenshots$' -screenshots -count=1 -v | grep -E 'wrote|FAIL|ok'
