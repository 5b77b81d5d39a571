#!/usr/bin/env bash
# bench/cluster.sh - active-active scaling of mxgate (issue 4). Writes
# bench/results/cluster.md. See bench/README.md ("Cluster").
#
# The measurement is TestActiveActiveBench in cmd/mxgate/activeactive_e2e_test.go,
# which shares the lab harness of the active-active e2e tests: for 1, 2 and
# 3 nodes, a namespace lab (testenv.Lab: mxl<pid><x>-*, removed afterwards),
# redis-server and smtp-sink in the client namespace (198.18.0.250), mxgate
# nodes at 198.18.0.11-13 with the VIP 198.18.0.100, equal weights; a Go SMTP
# client in the client namespace sends MSGS messages to VIP:25 over CONC
# reused sessions and records every reply. Every scan waits DELAY_MS (a
# remote engine's cost: scanner.simulated_delay) in one of WORKERS slots, so
# the cluster's capacity is nodes x WORKERS / DELAY_MS.
# Reported: messages/s per size and the ratio to one node (target >= 2.7x at
# 3), Redis commands and read events (~ round trips) per message on the hot
# path (INFO delta minus the idle rate), then with weights 100/50/50 over
# DIST_MSGS messages the share each node scanned (X-Mxgate-Node at the sink)
# against the weights (target < 2 % error).
#
# usage: sudo bench/cluster.sh
#   knobs (environment): DELAY_MS=50 WORKERS=4 MSGS=2000 DIST_MSGS=10000
#   CONC=48 REPS=1  QUICK=1 (MSGS=600 DIST_MSGS=3000: about a minute)
#   OUT=bench/results/cluster.md  GO=go
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then MSGS=${MSGS:-600}; DIST_MSGS=${DIST_MSGS:-3000}; fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$HERE/results/cluster.md}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

die() { echo "cluster: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, port 25, smtp-sink -u)"
for c in ip redis-server redis-cli smtp-sink; do
	command -v "$c" >/dev/null || die "$c not found (apt-get install iproute2 redis-server postfix)"
done
for k in DELAY_MS WORKERS MSGS DIST_MSGS CONC REPS; do
	v=${!k:-}
	[ -z "$v" ] || [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "$k must be a positive number"
done
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac

cd "$TOP"
MXGATE_BENCH_CLUSTER=$OUT \
BENCH_DELAY_MS=${DELAY_MS:-} BENCH_WORKERS=${WORKERS:-} BENCH_MSGS=${MSGS:-} \
BENCH_DIST_MSGS=${DIST_MSGS:-} BENCH_CONC=${CONC:-} BENCH_REPS=${REPS:-} \
	"$GO" test -tags clusterbench -count=1 -timeout 40m -run '^TestActiveActiveBench$' -v ./cmd/mxgate
echo "results: $OUT" >&2
