#!/usr/bin/env bash
# bench/run.sh - mxgate SMTP throughput, latency and memory benchmark.
#
# Runs mxgate (built-in checks on, embedded store) on loopback as target X of
# bench/smtp-anchors.sh, side by side with the direct
# smtp-source -> smtp-sink path, HAProxy (TCP), Postfix's queueing relay and
# Postfix's before-queue proxy; then reads mxgate's peak RSS, measures its
# RSS with IDLE idle sessions open (bench/idle), and the CPU split between
# mxgate, smtp-source and smtp-sink under load.  Writes bench/results/smtp.md.
# See bench/README.md.  Needs root (the anchors script does).
#
#   sudo ./bench/run.sh
#   sudo MSGS=2000 REPS=1 CPU_SPLIT=0 ./bench/run.sh      # quick look
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

# ------------------------------------------------------------------ knobs
MSGS=${MSGS:-5000}              # messages per measured run (10 KB each)
REPS=${REPS:-3}                 # repetitions per (mode, target), medians reported
IDLE=${IDLE:-1000}              # idle sessions for the memory measurement
GW_PORT=${GW_PORT:-24525}       # mxgate SMTP listener (127.0.0.1)
ADMIN_PORT=${ADMIN_PORT:-24580} # mxgate admin listener (metrics)
SINK_PORT=${SINK_PORT:-24025}   # the anchors script's smtp-sink; mxgate relays here
CPU_SPLIT=${CPU_SPLIT:-1}       # 1 = extra runs measuring per-process CPU (about 30 s)
BUILD=${BUILD:-0}               # 1 = rebuild bin/mxgate even if it exists
KEEP=${KEEP:-0}                 # 1 = keep the scratch directories (also the anchors')
# ------------------------------------------------------------------------
SESSIONS=20                     # smtp-source -s, as in the anchors script
SIZE=10240
RSS_LIMIT_MB=100 P99_LIMIT_MS=50 RATIO_MIN=0.5

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "## $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "run as root (the anchors script starts postfix and smtp-sink -u nobody)"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null) \
    || die "cannot find the repository top (git rev-parse --show-toplevel in $HERE failed)"
ANCHORS=${ANCHORS:-$HERE/smtp-anchors.sh}
[ -f "$ANCHORS" ] || die "anchors script not found: $ANCHORS
  (expected bench/smtp-anchors.sh in the repository;
   set ANCHORS=/path/to/smtp-anchors.sh to use another copy)"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
BIN=$TOP/bin/mxgate
OUT=$HERE/results/smtp.md
GW=127.0.0.1:$GW_PORT
for p in "$GW_PORT" "$ADMIN_PORT"; do
    [ -z "$(ss -Hltn "sport = :$p")" ] || die "port $p is already in use (set GW_PORT / ADMIN_PORT)"
done
for c in smtp-source smtp-sink top curl awk; do
    command -v "$c" >/dev/null || die "$c not found"
done

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
T_START=$(now_us)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

S=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-bench.XXXXXX") || die "mktemp failed"
GW_PID= IDLE_PID= SINK_PID= SRC_PID= TOP_PID=
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "$TOP_PID" "$SRC_PID" "$IDLE_PID" "$SINK_PID"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then
        kill -TERM "$GW_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$GW_PID" 2>/dev/null && { log "mxgate did not stop within 10 s of SIGTERM, killing"; kill -KILL "$GW_PID" 2>/dev/null; }
        wait "$GW_PID" 2>/dev/null
    fi
    if [ "$KEEP" = 1 ]; then log "scratch kept: $S"; else rm -rf "$S"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ build
TREE_VCS=
if [ "$BUILD" = 1 ] || [ ! -x "$BIN" ]; then
    log "building $BIN"
    TREE_VCS="$(git -C "$TOP" rev-parse --short HEAD)$(git -C "$TOP" diff --quiet HEAD || echo ' + uncommitted changes')"
    (cd "$TOP" && "$GO" build -o bin/mxgate ./cmd/mxgate) || die "go build ./cmd/mxgate failed"
fi
(cd "$TOP" && "$GO" build -o "$S/idle" ./bench/idle) || die "go build ./bench/idle failed"
# the revision the measured binary was built from: Go's stamp when present
# (not with GOFLAGS=-buildvcs=false), else the tree's when run.sh built it
BIN_VCS=$("$GO" version -m "$BIN" 2>/dev/null | awk '$1 == "build" && $2 ~ /^vcs\.revision=/ { r = substr($2, 14, 7) }
    $1 == "build" && $2 ~ /^vcs\.modified=true/ { m = 1 } END { if (r != "") print r (m ? " + uncommitted changes" : "") }')
[ -z "$BIN_VCS" ] && [ -n "$TREE_VCS" ] && BIN_VCS="$TREE_VCS (tree when run.sh built it)"
[ -z "$BIN_VCS" ] && BIN_VCS="an unknown revision (not stamped; set BUILD=1)"

# ------------------------------------------------------------------ gateway
mkdir -p "$S/data"
cat > "$S/mxgate.yaml" <<EOF
# written by bench/run.sh
node:
  id: bench1
  data_dir: $S/data
  log_level: info
  log_format: text
smtp:
  listen: ["$GW"]
  hostname: bench.test
  accept_domains: [bench.test]
  max_connections: 5000
  max_connections_per_ip: 5000
downstream:
  address: 127.0.0.1:$SINK_PORT
admin:
  listen: 127.0.0.1:$ADMIN_PORT
EOF
"$BIN" serve -c "$S/mxgate.yaml" > "$S/mxgate.log" 2>&1 &
GW_PID=$!
up=0
for _ in $(seq 100); do
    kill -0 "$GW_PID" 2>/dev/null || die "mxgate exited at start-up: $(tail -n 20 "$S/mxgate.log")"
    [ -n "$(ss -Hltn "sport = :$GW_PORT")" ] && { up=1; break; }
    sleep 0.1
done
[ "$up" = 1 ] || die "mxgate did not listen on $GW within 10 s: $(tail -n 20 "$S/mxgate.log")"
log "mxgate pid $GW_PID listening on $GW (scratch $S)"

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime
CLK_TCK=$(getconf CLK_TCK)
metrics() { curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null || echo "# metrics unavailable"; }
delivered() { metrics | awk '/^mxgate_smtp_messages_total\{action="deliver",/ { n += $2 } END { print n + 0 }'; }
gw_alive() { kill -0 "$GW_PID" 2>/dev/null; }

# ------------------------------------------------------------------ anchors
RSS_START=$(status_kb "$GW_PID" VmRSS)
CPU0=$(cpu_ticks "$GW_PID"); DLV0=$(delivered)
log "running $ANCHORS $GW (REPS=$REPS MSGS=$MSGS; several minutes)"
T_ANCH0=$(now_us)
anchors_rc=0
env REPS="$REPS" MSGS="$MSGS" SESSIONS="$SESSIONS" SINK_PORT="$SINK_PORT" KEEP="$KEEP" \
    COMBOS="$SIZE:conn:abcdX:$MSGS $SIZE:reuse:abcdX:$MSGS" RESULTS_TSV="$S/anchors.tsv" \
    bash "$ANCHORS" "$GW" 2>&1 > "$S/anchors.out" | tee "$S/anchors.log" >&2 || anchors_rc=$?
T_ANCH1=$(now_us)
gw_alive || die "mxgate died during the anchors run (exit status above); last log lines:
$(tail -n 40 "$S/mxgate.log")"
[ "$anchors_rc" = 0 ] || die "anchors script failed (rc=$anchors_rc); mxgate log tail:
$(tail -n 20 "$S/mxgate.log")"
grep -q 'X gateway' "$S/anchors.out" || die "anchors report has no gateway row: $(cat "$S/anchors.out")"
HWM_LOAD=$(status_kb "$GW_PID" VmHWM)
RSS_AFTER=$(status_kb "$GW_PID" VmRSS)
CPU1=$(cpu_ticks "$GW_PID"); DLV1=$(delivered)
metrics > "$S/metrics.after-load"

# ------------------------------------------------------------------ idle sessions
log "opening $IDLE idle sessions"
sleep 2
RSS_IDLE0=$(status_kb "$GW_PID" VmRSS)
"$S/idle" -addr "$GW" -n "$IDLE" > "$S/idle.out" 2> "$S/idle.err" &
IDLE_PID=$!
ready=0
for _ in $(seq 1200); do
    grep -q '^READY' "$S/idle.out" 2>/dev/null && { ready=1; break; }
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
done
[ "$ready" = 1 ] || die "idle client did not get ready: $(cat "$S/idle.out" "$S/idle.err")"
sleep 2   # let the gateway settle
RSS_IDLE1=$(status_kb "$GW_PID" VmRSS)
for _ in 1 2 3; do   # highest of a few samples
    sleep 0.5; r=$(status_kb "$GW_PID" VmRSS); [ "$r" -gt "$RSS_IDLE1" ] && RSS_IDLE1=$r
done
IDLE_EST=$(ss -Htn state established "( dport = :$GW_PORT )" | wc -l)
IDLE_OPEN_METRIC=$(metrics | awk '/^mxgate_smtp_connections_open / { print $2 }')
IDLE_GOROUTINES=$(metrics | awk '/^go_goroutines / { print $2 }')
HWM_IDLE=$(status_kb "$GW_PID" VmHWM)
read -r _ IDLE_N IDLE_BANNER IDLE_EHLO IDLE_FAILED IDLE_ELAPSED < <(sed -n 's/=/ /g; s/^READY //p' "$S/idle.out" | awk '{ print "x", $2, $4, $6, $8, $10 }')
kill -TERM "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null || true; IDLE_PID=
sleep 2
RSS_IDLE2=$(status_kb "$GW_PID" VmRSS)
gw_alive || die "mxgate died during the idle-session test: $(tail -n 40 "$S/mxgate.log")"

# ------------------------------------------------------------------ CPU split
# Own smtp-sink on SINK_PORT (the anchors' one is gone), same smtp-source load;
# CPU of mxgate and smtp-sink from /proc deltas, of smtp-source from `times`.
: > "$S/cpu.tsv"; : > "$S/top.txt"
machine_busy() { local _c u n s i w q sq st rest; read -r _c u n s i w q sq st rest < /proc/stat
    echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"; }
tsec() { awk '{ split($0, a, "m"); sub("s", "", a[2]); print a[1] * 60 + a[2] }' <<< "$1"; }
cpu_run() {  # label addr mode
    local label=$1 addr=$2 mode=$3 args
    args=(-s "$SESSIONS" -m "$MSGS" -l "$SIZE" -N -M bench.test -f from@bench.test -t rcpt@bench.test)
    [ "$mode" = reuse ] && args+=(-d)
    local g0 k0 b0 t0 g1 k1 b1 t1 mb0 mt0 mb1 mt1 rc=0
    g0=$(cpu_ticks "$GW_PID"); k0=$(cpu_ticks "$SINK_PID"); read -r mb0 mt0 <<< "$(machine_busy)"
    t0=$(now_us)
    ( smtp-source "${args[@]}" "$addr" > "$S/src-$label.out" 2>&1; r=$?; times > "$S/src-$label.times"; exit $r ) &
    SRC_PID=$!
    { sleep 0.5; top -b -n 2 -d 1 -w 200 > "$S/top-$label.raw"; } &
    TOP_PID=$!
    wait "$SRC_PID" || rc=$?; SRC_PID=
    t1=$(now_us)
    g1=$(cpu_ticks "$GW_PID"); k1=$(cpu_ticks "$SINK_PID"); read -r mb1 mt1 <<< "$(machine_busy)"
    wait "$TOP_PID" 2>/dev/null || true; TOP_PID=
    local st; st=$(sed -n 2p "$S/src-$label.times")
    local su ss; read -r su ss <<< "$st"
    local src_s; src_s=$(awk -v a="$(tsec "$su")" -v b="$(tsec "$ss")" 'BEGIN { print a + b }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$rc" "$((t1 - t0))" \
        "$(( (g1 - g0) ))" "$src_s" "$(( (k1 - k0) ))" "$(( (mb1 - mb0) * 100 / (mt1 - mt0 > 0 ? mt1 - mt0 : 1) ))" \
        "$(tail -n 1 "$S/src-$label.out" | tr '\t' ' ')" >> "$S/cpu.tsv"
    # second frame of top = 1 s of load; keep the header and the three programs
    { echo "### $label: top -b -n 2 -d 1 (second frame), $(date -u +%T)Z"
      awk '/^top -/ { f++ } f == 2' "$S/top-$label.raw" \
        | awk 'NR <= 5 || /PID USER/ || /mxgate|smtp-source|smtp-sink|haproxy|master|smtpd|perl|go$|gopls|compile/' | head -n 25
      echo; } >> "$S/top.txt"
    [ "$rc" = 0 ] || log "cpu split $label: smtp-source rc=$rc: $(tail -n 3 "$S/src-$label.out" | tr '\n' ' ')"
    sleep 1
}
if [ "$CPU_SPLIT" = 1 ]; then
    log "CPU split runs (direct, mxgate conn, mxgate reuse; $MSGS messages each)"
    [ -z "$(ss -Hltn "sport = :$SINK_PORT")" ] || die "port $SINK_PORT still in use after the anchors run"
    smtp-sink -u nobody -m 2048 "127.0.0.1:$SINK_PORT" 2048 > /dev/null 2> "$S/sink.err" &
    SINK_PID=$!
    for _ in $(seq 100); do [ -n "$(ss -Hltn "sport = :$SINK_PORT")" ] && break; sleep 0.1; done
    DLV2=$(delivered)
    cpu_run direct "127.0.0.1:$SINK_PORT" conn
    cpu_run mxgate-conn "$GW" conn
    cpu_run mxgate-reuse "$GW" reuse
    DLV3=$(delivered)
    kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=
    gw_alive || die "mxgate died during the CPU split runs: $(tail -n 40 "$S/mxgate.log")"
fi
metrics > "$S/metrics.end"
T_END=$(now_us)

# ------------------------------------------------------------------ report
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; }
pf() { [ "$1" = 1 ] && echo PASS || echo FAIL; }
dur() { awk -v u="$1" 'BEGIN { s = int(u / 1e6); printf "%dm%02ds", s / 60, s % 60 }'; }

# rows of the anchors table: size mode letter name msgs acc e2e xA Lmean p50 p95 p99 n busy bg err
rows() { awk '{ l = $0; gsub(/\[[^]]*\]/, "", l); n = split(l, f, " ")
               if (n >= 16 && f[3] ~ /^[abcdX]$/) print f[2], f[3], f[7], f[8], f[10], f[11], f[12], f[13], f[16], f[14], f[15] }' "$S/anchors.out"; }
name_of() { case $1 in a) echo "direct smtp-source → smtp-sink";; b) echo "HAProxy (mode tcp)";;
    c) echo "Postfix queueing relay";; d) echo "Postfix before-queue proxy";; X) echo "**mxgate** (built-in checks)";; esac; }
# paired per-repetition ratio X/d (mxgate vs Postfix before-queue proxy), median
x_over_d() { awk -F'\t' -v m="$1" '$2 == m { r[$3, $4] = ($5 + $6) * 1e6 / $8; reps[$4] = 1 }
    END { n = 0; for (k in reps) if (((("X", k) in r)) && (("d", k) in r)) v[++n] = r["X", k] / r["d", k]
          if (!n) { print "-"; exit }
          for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j+1] = v[j]; v[j+1] = t }
          printf "%.2f", n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2 }' "$S/anchors.tsv"; }

# check runs inside $(...): record failures in a file, not a variable
: > "$S/failed-checks"
check() { [ "$1" = 1 ] || echo x >> "$S/failed-checks"; pf "$1"; }
GW_LOG_LINES=$(wc -l < "$S/mxgate.log")
GW_WARN=$(grep -c 'level=WARN' "$S/mxgate.log" || true)
GW_ERR=$(grep -c 'level=ERROR' "$S/mxgate.log" || true)
GW_PANIC=$(grep -c -E '^panic:|fatal error:|^goroutine [0-9]+ \[' "$S/mxgate.log" || true)
GW_CPU_S=$(awk -v t="$((CPU1 - CPU0))" -v h="$CLK_TCK" 'BEGIN { printf "%.1f", t / h }')
GW_DLV=$(awk -v a="$DLV0" -v b="$DLV1" 'BEGIN { printf "%d", b - a }')
GW_US_MSG=$(awk -v t="$((CPU1 - CPU0))" -v h="$CLK_TCK" -v n="$GW_DLV" 'BEGIN { if (n > 0) printf "%.0f", t / h / n * 1e6; else print "-" }')

{
echo "# mxgate SMTP benchmark"
echo
echo "Produced by \`bench/run.sh\` (see [bench/README.md](../README.md)); overwritten on every run."
echo
echo "| | |"
echo "|---|---|"
echo "| date | $(date -u '+%F %H:%M UTC') |"
echo "| machine | $(nproc) CPU ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r), $(awk '/^MemTotal/ { printf "%.1f GB RAM", $2 / 1e6 }' /proc/meminfo) |"
echo "| go | $("$GO" version | sed 's/^go version //') |"
echo "| mxgate | bin/mxgate built $(date -u -r "$BIN" '+%F %H:%M UTC') from $BIN_VCS (repository HEAD now: $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)) |"
echo "| load | 10 KB messages, $SESSIONS concurrent smtp-source sessions, $MSGS messages per run, $REPS repetitions, medians |"
echo "| runtime | $(dur $((T_END - T_START))) total, of which anchors $(dur $((T_ANCH1 - T_ANCH0))) |"
echo "| load average (1/5/15 min) | at start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg) |"
echo
echo "## Summary"
echo
echo "| mode | target | msgs/s (e2e) | ratio to direct | p50 ms | p99 ms | err | busy | bg |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
rows | while read -r mode tg e2e xA p50 p95 p99 n err busy bg; do
    echo "| $mode | $(name_of "$tg") | $e2e | $xA | $p50 | $p99 | $err | $busy | $bg |"
done
BG_MAX=$(rows | awk '{ v = $11; sub("%", "", v); if (v + 0 > m) m = v + 0 } END { print m + 0 }')
echo
echo "busy: whole-machine CPU during the run; bg: highest whole-machine CPU just before a run (other programs)."
if [ "$BG_MAX" -gt "${QUIET_MAX:-20}" ]; then
    echo
    echo "**Warning: other programs were using the CPU before some runs (bg up to $BG_MAX %, the anchors' quiet"
    echo "threshold is ${QUIET_MAX:-20} %). Source, sink and targets share 2 CPUs with them: absolute rates and"
    echo "latencies are depressed and noisy; the paired ratios are less affected, but treat them with care.**"
fi
echo
echo "\"conn\": one message per connection; \"reuse\": every session sends all its messages over one connection."
echo "Ratios are paired per repetition (median); p50/p99 come from the anchors' paced latency probe"
echo "(one extra session, ≤ 50 transactions/s, running during the load)."
echo
echo "mxgate ÷ Postfix before-queue proxy (paired, median): conn $(x_over_d conn), reuse $(x_over_d reuse) (target ≥ 2.5)."
echo
echo "### Targets"
echo
echo "| target | measured | verdict |"
echo "|---|---|---|"
while read -r mode tg e2e xA p50 p95 p99 n err _; do
    [ "$tg" = X ] || continue
    echo "| $mode: e2e rate ≥ $RATIO_MIN × direct | $xA | $(check "$(awk -v x="$xA" -v m="$RATIO_MIN" 'BEGIN { print (x + 0 >= m) ? 1 : 0 }')") |"
    echo "| $mode: p99 latency < $P99_LIMIT_MS ms | $p99 ms (n=$n probe samples) | $(check "$(awk -v x="$p99" -v m="$P99_LIMIT_MS" 'BEGIN { print (x >= 0 && x < m) ? 1 : 0 }')") |"
    echo "| $mode: no errors, every message at the sink | err=$err | $(check "$([ "$err" = 0 ] && echo 1 || echo 0)") |"
done < <(rows)
echo "| RSS with $IDLE idle sessions < $RSS_LIMIT_MB MB | $(mb "$RSS_IDLE1") MB | $(check "$(awk -v k="$RSS_IDLE1" -v m="$RSS_LIMIT_MB" 'BEGIN { print (k * 1024 < m * 1e6) ? 1 : 0 }')") |"
echo "| all $IDLE idle sessions got 220 + EHLO reply | banner=$IDLE_BANNER ehlo=$IDLE_EHLO failed=$IDLE_FAILED | $(check "$([ "$IDLE_BANNER" = "$IDLE" ] && [ "$IDLE_EHLO" = "$IDLE" ] && echo 1 || echo 0)") |"
ALL_PASS=1; [ -s "$S/failed-checks" ] && ALL_PASS=0
echo "| **overall** | | **$(pf "$ALL_PASS")** |"
echo
echo "## Memory (mxgate, /proc/PID/status; MB = 10^6 bytes)"
echo
echo "| when | VmRSS MB | VmHWM (peak) MB |"
echo "|---|---:|---:|"
echo "| started, before any load | $(mb "$RSS_START") | |"
echo "| after the anchors load | $(mb "$RSS_AFTER") | **$(mb "$HWM_LOAD")** (peak RSS under load) |"
echo "| before opening the idle sessions | $(mb "$RSS_IDLE0") | |"
echo "| with $IDLE idle sessions open | **$(mb "$RSS_IDLE1")** | $(mb "$HWM_IDLE") |"
echo "| 2 s after they closed | $(mb "$RSS_IDLE2") | |"
echo
echo "Idle sessions: $IDLE opened (connect, 220, EHLO, 250) in $IDLE_ELAPSED; established at measurement (ss): $IDLE_EST;"
echo "gateway's mxgate_smtp_connections_open: ${IDLE_OPEN_METRIC:-?}, go_goroutines: ${IDLE_GOROUTINES:-?};"
echo "increase over the idle baseline: $(awk -v a="$RSS_IDLE0" -v b="$RSS_IDLE1" -v n="$IDLE" 'BEGIN { printf "%.1f MB, %.1f kB per session", (b - a) * 1024 / 1e6, (b - a) * 1.024 / n }')."
[ -s "$S/idle.err" ] && { echo; echo '```'; head -n 20 "$S/idle.err"; echo '```'; }
echo
echo "## CPU"
echo
echo "mxgate used $GW_CPU_S CPU-seconds during the whole anchors run, while relaying $GW_DLV messages"
echo "(mxgate_smtp_messages_total{action=\"deliver\"} delta, warm-up and smoke test included): about $GW_US_MSG µs of CPU per message."
if [ "$CPU_SPLIT" = 1 ]; then
    echo
    echo "Separate runs after the anchors (own smtp-sink, same smtp-source arguments, $MSGS messages each, no probe):"
    echo "CPU-seconds per process over the run, and % of one core (2 cores = 200 %)."
    echo
    echo "| run | wall s | msgs/s (client) | mxgate CPU s (%) | smtp-source CPU s (%) | smtp-sink CPU s (%) | machine busy | mxgate µs/msg | rc |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' -v h="$CLK_TCK" -v n="$MSGS" '{
        w = $3 / 1e6; g = $4 / h; s = $5; k = $6 / h
        printf "| %s | %.2f | %.0f | %.2f (%.0f %%) | %.2f (%.0f %%) | %.2f (%.0f %%) | %d %% | %s | %s |\n", $1, w, n / w,
            g, 100 * g / w, s, 100 * s / w, k, 100 * k / w, $7, ($1 ~ /mxgate/ ? sprintf("%.0f", g / n * 1e6) : "-"), $2
    }' "$S/cpu.tsv"
    echo
    echo "<details><summary>top snapshots during these runs</summary>"
    echo
    echo '```'
    cat "$S/top.txt"
    echo '```'
    echo "</details>"
fi
echo
echo "## Gateway log and metrics"
echo
echo "mxgate log (level info, stderr of \`mxgate serve\`): $GW_LOG_LINES lines, WARN $GW_WARN, ERROR $GW_ERR, panics/fatal $GW_PANIC."
if [ "$((GW_WARN + GW_ERR + GW_PANIC))" -gt 0 ]; then
    echo
    echo "Distinct WARN/ERROR messages (count, level, msg):"
    echo
    echo '```'
    grep -E 'level=(WARN|ERROR)' "$S/mxgate.log" | sed -E 's/.*level=([A-Z]+) msg=("[^"]*"|[^ ]*).*/\1 \2/' | sort | uniq -c | sort -rn | head -n 20
    echo '```'
    echo
    echo "First 20 WARN/ERROR/panic lines:"
    echo
    echo '```'
    grep -E 'level=(WARN|ERROR)|^panic:|fatal error:' "$S/mxgate.log" | head -n 20 | cut -c1-400
    echo '```'
fi
echo
echo "mxgate metrics at the end (mxgate_* counters):"
echo
echo '```'
grep -E '^mxgate_(smtp_messages|smtp_rcpt_refused|smtp_connections_refused|downstream_errors|msglog_(dropped|store_errors|stored)_total|msglog_journal_sync_seconds_(sum|count)|scan_duration_seconds_(sum|count))' "$S/metrics.end" || echo "(none)"
echo '```'
echo
echo "## Anchors report (verbatim)"
echo
echo '```'
cat "$S/anchors.out"
echo '```'
echo
echo "<details><summary>anchors progress log (one line per run)</summary>"
echo
echo '```'
cat "$S/anchors.log"
echo '```'
echo "</details>"
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"

log "results: $OUT ($(pf "$ALL_PASS")); runtime $(dur $((T_END - T_START)))"
cat "$S/anchors.out" >&2
