#!/usr/bin/env bash
# Whole-server comparison of clusterdns and CoreDNS 1.11 with dnsperf, on the same data in the
# same run, reported as a ratio (the machine is noisy; absolute numbers drift).
#
#   benches/dnsperf/compare.sh
#
# Both servers read the demo cluster (config/demo-cluster, as tests/stand-in/demo.json) from the
# fake Kubernetes API server tests/stand-in/fake_apiserver.py. Scenarios:
#
#   cluster  names of the demo cluster (benches/dnsperf/queries-cluster.txt): ClusterIP A and AAAA, headless
#            A, SRV, PTR, a pod name, an in-cluster CNAME, NXDOMAINs (some as a search path makes
#            them). Servers: kubernetes only (plus loadbalance, which clusterdns does by default).
#   forward  names forwarded through a cache (benches/dnsperf/queries-forward.txt, mostly cache hits): both
#            forward to a third CoreDNS serving benches/dnsperf/example.org.zone with the `file` plugin.
#
# Before measuring, every name of the query file is asked of both servers (dig) and the answers
# (rcode, flags, every section's records, sorted) are compared; differences are printed.
# Then dnsperf runs against each server alternately (ABBA order), ROUNDS times each, the servers
# pinned to SERVER_CPUS and dnsperf to CLIENT_CPUS. Printed per scenario: queries/s, the server's
# CPU time per query (from /proc/PID/stat: steadier than q/s on a noisy machine, and fair when
# dnsperf is the bottleneck), average latency, lost queries, the ratios clusterdns/CoreDNS, and
# each server's peak RSS (VmHWM).
#
# Installs what is missing: dnsperf and dig (apt-get), CoreDNS (npm, into target/bench-tools),
# and builds clusterdns with `cargo build --release` unless CLUSTERDNS is given.
#
# Environment (defaults in brackets):
#   CLUSTERDNS      clusterdns binary to measure [cargo build --release; target/release/clusterdns]
#   CARGO_TARGET_DIR  honoured by that build and where its binary is looked for [target]
#   COREDNS         CoreDNS binary [target/bench-tools/node_modules/coredns-dist-linux-x64/coredns]
#   COREDNS_NPM     npm package spec for CoreDNS [coredns-dist-linux-x64@1.11.1-3]
#   TOOLS_DIR       where CoreDNS is installed [target/bench-tools]
#   SCENARIOS       which scenarios, space-separated ["cluster forward"]
#   ROUNDS          dnsperf runs per server and scenario [3]
#   DURATION        seconds per dnsperf run [10]
#   CLIENTS         dnsperf -c [4]
#   OUTSTANDING     dnsperf -q, queries in flight [100]
#   MAX_QPS         dnsperf -Q [200000]
#   SERVER_CPUS     taskset -c list for the servers [0]
#   CLIENT_CPUS     taskset -c list for dnsperf, the API stand-in and the upstream [1]
#   STRICT          1: stop before measuring when answers differ [0]
#   SHOW_ANSWERS    1: print both servers' normalized answers to every question, not only differences [0]
#   KEEP_WORK       1: keep the temporary directory (configs, logs, dnsperf output) [0]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="$ROOT/benches/dnsperf"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TOOLS_DIR="${TOOLS_DIR:-$ROOT/target/bench-tools}"
COREDNS_NPM="${COREDNS_NPM:-coredns-dist-linux-x64@1.11.1-3}"
SCENARIOS="${SCENARIOS:-cluster forward}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-100}"
MAX_QPS="${MAX_QPS:-200000}"
SERVER_CPUS="${SERVER_CPUS:-0}"
CLIENT_CPUS="${CLIENT_CPUS:-1}"
STRICT="${STRICT:-0}"
SHOW_ANSWERS="${SHOW_ANSWERS:-0}"
KEEP_WORK="${KEEP_WORK:-0}"

log() { printf '%s\n' "== $*" >&2; }
die() { printf 'dnsperf-compare: %s\n' "$*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------------------

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
command -v dnsperf >/dev/null 2>&1 || { log "installing dnsperf"; apt_install dnsperf; }
command -v dig >/dev/null 2>&1 || { log "installing dig (bind9-dnsutils)"; apt_install bind9-dnsutils; }
command -v taskset >/dev/null 2>&1 || { log "installing taskset (util-linux)"; apt_install util-linux; }
command -v python3 >/dev/null 2>&1 || { log "installing python3"; apt_install python3; }

if [ -z "${COREDNS:-}" ]; then
  COREDNS="$TOOLS_DIR/node_modules/coredns-dist-linux-x64/coredns"
  if [ ! -x "$COREDNS" ]; then
    command -v npm >/dev/null 2>&1 || { log "installing npm"; apt_install npm; }
    log "installing CoreDNS ($COREDNS_NPM) into $TOOLS_DIR"
    mkdir -p "$TOOLS_DIR"
    npm install --prefix "$TOOLS_DIR" --no-save --no-audit --no-fund --silent "$COREDNS_NPM" >/dev/null
    [ -x "$COREDNS" ] || chmod +x "$COREDNS" 2>/dev/null || true
  fi
fi
[ -x "$COREDNS" ] || die "CoreDNS binary not found at $COREDNS"

if [ -z "${CLUSTERDNS:-}" ]; then
  log "building clusterdns (cargo build --release)"
  (cd "$ROOT" && cargo build --release --quiet)
  CLUSTERDNS="$TARGET_DIR/release/clusterdns"
fi
[ -x "$CLUSTERDNS" ] || die "clusterdns binary not found at $CLUSTERDNS"

# --- processes ------------------------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dnsperf-compare.XXXXXX")"
PIDS=()

stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid"
  done
  if [ "$KEEP_WORK" = 1 ]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port free for both UDP and TCP on 127.0.0.1.
free_port() {
  python3 - <<'EOF'
import socket
for _ in range(50):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    u.close()
    t.close()
    print(port)
    break
else:
    raise SystemExit("no free port")
EOF
}

# wait_for_line FILE REGEX PID SECONDS: prints the first match of REGEX in FILE.
wait_for_line() {
  local file="$1" regex="$2" pid="$3" secs="$4" i line
  for i in $(seq 1 $((secs * 10))); do
    line="$(grep -m1 -E "$regex" "$file" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      printf '%s\n' "$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# wait_for_answer PORT NAME TYPE SECONDS: until the server answers NOERROR with an answer.
wait_for_answer() {
  local port="$1" name="$2" type="$3" secs="$4" i
  for i in $(seq 1 $((secs * 5))); do
    if [ -n "$(dig @127.0.0.1 -p "$port" +tries=1 +time=1 +short "$name" "$type" 2>/dev/null)" ]; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

peak_rss() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_now() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# --- the shared cluster: the fake Kubernetes API server ---------------------------------------

taskset -c "$CLIENT_CPUS" python3 "$ROOT/tests/stand-in/fake_apiserver.py" \
  --listen 127.0.0.1:0 --fixture "$ROOT/tests/stand-in/demo.json" \
  >"$WORK/apiserver.out" 2>"$WORK/apiserver.err" &
API_PID=$!
PIDS+=("$API_PID")
api_line="$(wait_for_line "$WORK/apiserver.out" '^fake-apiserver: listening on ' "$API_PID" 20)" \
  || { cat "$WORK/apiserver.err" >&2; die "the fake API server did not start"; }
API_URL="${api_line##* }"
log "fake API server at $API_URL"

# --- the upstream for the forwarding scenario --------------------------------------------------

UP_PID=""
UP_PORT=""
start_upstream() {
  [ -n "$UP_PID" ] && return 0
  UP_PORT="$(free_port)"
  mkdir -p "$WORK/upstream"
  cat >"$WORK/upstream/Corefile" <<EOF
example.org:$UP_PORT {
    bind 127.0.0.1
    file $BENCH/example.org.zone
}
EOF
  (cd "$WORK/upstream" && exec taskset -c "$CLIENT_CPUS" "$COREDNS" -conf Corefile) \
    >"$WORK/upstream/out" 2>&1 &
  UP_PID=$!
  PIDS+=("$UP_PID")
  wait_for_answer "$UP_PORT" www.example.org A 20 \
    || { cat "$WORK/upstream/out" >&2; die "the upstream CoreDNS did not answer"; }
  log "upstream CoreDNS (example.org) on 127.0.0.1:$UP_PORT"
}

# --- the servers under test ------------------------------------------------------------------

CD_PID="" CD_PORT="" CO_PID="" CO_PORT=""

start_servers() {
  local scenario="$1" dir="$WORK/$1"
  mkdir -p "$dir"
  local forward_toml="" forward_corefile=""
  if [ "$scenario" = forward ]; then
    start_upstream
    forward_toml="
[server.forward]
to = [\"127.0.0.1:$UP_PORT\"]

[server.cache]
capacity         = 10000
max_ttl          = 30
negative_max_ttl = 30
"
    forward_corefile="
    cache 30
    forward . 127.0.0.1:$UP_PORT"
  fi

  CO_PORT="$(free_port)"
  cat >"$dir/Corefile" <<EOF
.:$CO_PORT {
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        endpoint $API_URL
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }$forward_corefile
    loadbalance
}
EOF
  (cd "$dir" && exec taskset -c "$SERVER_CPUS" "$COREDNS" -conf Corefile) \
    >"$dir/coredns.out" 2>&1 &
  CO_PID=$!
  PIDS+=("$CO_PID")

  cat >"$dir/clusterdns.toml" <<EOF
[[server]]
listen = ["127.0.0.1:0"]
zones  = ["."]

[server.kubernetes]
zones       = ["cluster.local", "in-addr.arpa", "ip6.arpa"]
endpoint    = "$API_URL"
pods        = "insecure"
ttl         = 5
fallthrough = ["in-addr.arpa", "ip6.arpa"]
$forward_toml
EOF
  RUST_LOG="${RUST_LOG:-warn}" taskset -c "$SERVER_CPUS" "$CLUSTERDNS" --config "$dir/clusterdns.toml" \
    >"$dir/clusterdns.out" 2>"$dir/clusterdns.err" &
  CD_PID=$!
  PIDS+=("$CD_PID")

  local line
  line="$(wait_for_line "$dir/clusterdns.out" '^clusterdns: listening on ' "$CD_PID" 60)" \
    || { cat "$dir/clusterdns.err" >&2; die "clusterdns did not start"; }
  line="${line#clusterdns: listening on }"
  line="${line%% *}"
  CD_PORT="${line##*:}"
  wait_for_answer "$CD_PORT" kubernetes.default.svc.cluster.local A 30 \
    || { cat "$dir/clusterdns.err" >&2; die "clusterdns does not answer on $CD_PORT"; }
  wait_for_answer "$CO_PORT" kubernetes.default.svc.cluster.local A 30 \
    || { cat "$dir/coredns.out" >&2; die "CoreDNS does not answer on $CO_PORT"; }
  log "[$scenario] clusterdns pid $CD_PID on 127.0.0.1:$CD_PORT; CoreDNS pid $CO_PID on 127.0.0.1:$CO_PORT"
}

stop_servers() {
  stop_pid "$CD_PID"
  stop_pid "$CO_PID"
}

# --- same answers? ---------------------------------------------------------------------------

# The answer to one question, normalized: rcode, flags (without ra, which says whether a
# forwarder is configured, not what the answer is), then every record of the answer, authority
# and additional sections, each prefixed with its section, lower-case, sorted. The SOA serial is
# dropped (each server stamps its own); TTLs are kept only when KEEP_TTL=1 (cache hits count
# their TTLs down).
normalized_answer() {
  local port="$1" name="$2" type="$3" keep_ttl="$4" out
  out="$(dig @127.0.0.1 -p "$port" +tries=2 +time=2 +noall +comments +answer +authority +additional \
    "$name" "$type" 2>&1 || true)"
  printf 'status=%s flags=%s\n' \
    "$(printf '%s\n' "$out" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p' | head -1)" \
    "$(printf '%s\n' "$out" | sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' | head -1 | tr ' ' '\n' | { grep -v '^ra$' || true; } | sort | tr '\n' ' ' | sed 's/ $//')"
  printf '%s\n' "$out" | awk -v keep_ttl="$keep_ttl" '
    /^;; ANSWER SECTION:/ { section = "answer"; next }
    /^;; AUTHORITY SECTION:/ { section = "authority"; next }
    /^;; ADDITIONAL SECTION:/ { section = "additional"; next }
    /^;/ || NF == 0 { next }
    {
      $1 = $1
      if (toupper($4) == "SOA") $7 = "SERIAL"
      if (keep_ttl != 1) $2 = ""
      print section ": " tolower($0)
    }' | tr -s ' ' | sort
}

compare_answers() {
  local scenario="$1" file="$2" keep_ttl="$3" name type differ=0 total=0 a b
  while read -r name type; do
    [ -z "$name" ] && continue
    total=$((total + 1))
    a="$(normalized_answer "$CD_PORT" "$name" "$type" "$keep_ttl")"
    b="$(normalized_answer "$CO_PORT" "$name" "$type" "$keep_ttl")"
    if [ "$SHOW_ANSWERS" = 1 ]; then
      printf '\n[%s] %s %s\n--- clusterdns\n%s\n--- CoreDNS\n%s\n' "$scenario" "$name" "$type" "$a" "$b"
    fi
    if [[ "$a" == "status= "* || "$b" == "status= "* ]]; then
      differ=$((differ + 1))
      printf '\n[%s] NO ANSWER (timeout) for %s %s: clusterdns "%s", CoreDNS "%s"\n' \
        "$scenario" "$name" "$type" "${a%%$'\n'*}" "${b%%$'\n'*}"
    elif [ "$a" != "$b" ]; then
      differ=$((differ + 1))
      printf '\n[%s] DIFFERENT ANSWER: %s %s\n--- clusterdns\n%s\n--- CoreDNS\n%s\n' \
        "$scenario" "$name" "$type" "$a" "$b"
    fi
  done <"$file"
  printf '[%s] answers compared (rcode, flags but ra, all sections, TTLs: %s): %d questions, %d differ\n' \
    "$scenario" "$([ "$keep_ttl" = 1 ] && echo yes || echo no)" "$total" "$differ"
  if [ "$differ" -gt 0 ] && [ "$STRICT" = 1 ]; then
    die "answers differ (STRICT=1)"
  fi
  DIFFERENT["$scenario"]="$differ"
}

# --- measuring -------------------------------------------------------------------------------

CLK_TCK="$(getconf CLK_TCK)"
# CPU time (user + system, all threads) a process has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# run_dnsperf PID PORT FILE OUT: one bounded dnsperf run against the server PID listens on.
# Prints "qps latency_ms lost server_cpu_percent server_cpu_us_per_query".
run_dnsperf() {
  local pid="$1" port="$2" file="$3" out="$4" before after
  before="$(cpu_ticks "$pid")"
  timeout $((DURATION + 60)) taskset -c "$CLIENT_CPUS" \
    dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$DURATION" -c "$CLIENTS" \
    -q "$OUTSTANDING" -Q "$MAX_QPS" -t 2 >"$out" 2>&1 || true
  after="$(cpu_ticks "$pid")"
  awk -v ticks=$((after - before)) -v hz="$CLK_TCK" '
    /Queries completed:/ { done = $3 }
    /Run time \(s\):/ { secs = $4 }
    /Queries per second:/ { qps = $4 }
    /Average Latency \(s\):/ { lat = $4 * 1000 }
    /Queries lost:/ { lost = $3 }
    END {
      if (qps == "" || secs == 0 || done == 0) { print "0 0 0 0 0"; exit }
      cpu = ticks / hz
      printf "%.0f %.3f %s %.0f %.2f\n", qps, lat, lost, 100 * cpu / secs, 1e6 * cpu / done
    }
  ' "$out"
}

declare -A DIFFERENT
SUMMARY=()

measure() {
  local scenario="$1" file="$2" dir="$WORK/$1" round order server pid port qps lat lost cpu cpq
  local -a cd_qps=() co_qps=() cd_lat=() co_lat=() cd_cpq=() co_cpq=() cd_cpu=()
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="clusterdns coredns"; else order="coredns clusterdns"; fi
    for server in $order; do
      if [ "$server" = clusterdns ]; then pid="$CD_PID" port="$CD_PORT"; else pid="$CO_PID" port="$CO_PORT"; fi
      read -r qps lat lost cpu cpq < <(run_dnsperf "$pid" "$port" "$file" "$dir/dnsperf-$server-$round.out")
      printf '[%s] round %d %-10s %9s q/s  avg latency %7s ms  lost %s  server cpu %3s%%  %6s us cpu/query\n' \
        "$scenario" "$round" "$server" "$qps" "$lat" "$lost" "$cpu" "$cpq"
      if [ "$server" = clusterdns ]; then
        cd_qps+=("$qps"); cd_lat+=("$lat"); cd_cpq+=("$cpq"); cd_cpu+=("$cpu")
      else
        co_qps+=("$qps"); co_lat+=("$lat"); co_cpq+=("$cpq")
      fi
    done
  done
  local cd_hwm co_hwm cd_rss co_rss
  cd_hwm="$(peak_rss "$CD_PID")"; co_hwm="$(peak_rss "$CO_PID")"
  cd_rss="$(rss_now "$CD_PID")"; co_rss="$(rss_now "$CO_PID")"
  local line
  line="$(python3 - "$scenario" "${cd_qps[*]}" "${co_qps[*]}" "${cd_lat[*]}" "${co_lat[*]}" \
    "${cd_cpq[*]}" "${co_cpq[*]}" "${cd_cpu[*]}" \
    "$cd_hwm" "$co_hwm" "$cd_rss" "$co_rss" "${DIFFERENT[$scenario]:-?}" <<'EOF'
import statistics, sys
scenario, cdq, coq, cdl, col, cdc, coc, cdu, cdh, coh, cdr, cor, diff = sys.argv[1:]
f = lambda s: [float(x) for x in s.split()]
cdq, coq, cdl, col, cdc, coc, cdu = f(cdq), f(coq), f(cdl), f(col), f(cdc), f(coc), f(cdu)
med = statistics.median
nan = float("nan")
fmt = lambda rs: ", ".join(f"{r:.2f}" for r in rs)
# Ratios per round (adjacent runs), then their median: robust to drift.
qr = [a / b for a, b in zip(cdq, coq) if b > 0]
cr = [a / b for a, b in zip(cdc, coc) if b > 0]
ml, ol = med(cdl), med(col)
print(f"[{scenario}] q/s (median): clusterdns {med(cdq):,.0f}  CoreDNS {med(coq):,.0f}  "
      f"ratio clusterdns/CoreDNS {med(qr) if qr else nan:.2f} (per round {fmt(qr)})")
print(f"[{scenario}] server cpu per query (median): clusterdns {med(cdc):.2f} us  CoreDNS {med(coc):.2f} us  "
      f"ratio {med(cr) if cr else nan:.2f} (per round {fmt(cr)})")
print(f"[{scenario}] avg latency (median): clusterdns {ml:.3f} ms  CoreDNS {ol:.3f} ms  "
      f"ratio {ml / ol if ol else nan:.2f}")
print(f"[{scenario}] peak RSS (VmHWM): clusterdns {int(cdh) / 1024:.1f} MiB  CoreDNS {int(coh) / 1024:.1f} MiB  "
      f"ratio {int(cdh) / int(coh) if int(coh) else nan:.2f}  (VmRSS at the end: {int(cdr) / 1024:.1f} / {int(cor) / 1024:.1f} MiB)")
print(f"[{scenario}] answers that differ: {diff}")
if cdu and med(cdu) < 90:
    print(f"[{scenario}] note: clusterdns used {med(cdu):.0f}% of its cpu: dnsperf (or the machine) was the "
          "bottleneck, so the q/s ratio understates it; cpu/query is the fairer ratio")
EOF
)"
  printf '%s\n' "$line"
  SUMMARY+=("$line")
}

# --- run -------------------------------------------------------------------------------------

log "clusterdns: $("$CLUSTERDNS" --version 2>/dev/null || echo "$CLUSTERDNS")"
log "CoreDNS:    $("$COREDNS" -version 2>/dev/null | head -1)"
log "dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p'); ${ROUNDS} rounds x ${DURATION}s per server; -c $CLIENTS -q $OUTSTANDING -Q $MAX_QPS; servers on cpu $SERVER_CPUS, dnsperf on cpu $CLIENT_CPUS"

for scenario in $SCENARIOS; do
  case "$scenario" in
    cluster) file="$BENCH/queries-cluster.txt" ;;
    forward) file="$BENCH/queries-forward.txt" ;;
    *) die "unknown scenario $scenario (cluster, forward)" ;;
  esac
  start_servers "$scenario"
  # TTLs are compared for cluster names (both serve ttl 5), not for cached forwarded ones.
  if [ "$scenario" = cluster ]; then keep_ttl=1; else keep_ttl=0; fi
  compare_answers "$scenario" "$file" "$keep_ttl"
  if [ "$scenario" = forward ]; then
    # Warm both caches the same way before measuring.
    while read -r name type; do
      dig @127.0.0.1 -p "$CD_PORT" +tries=1 +time=1 "$name" "$type" >/dev/null 2>&1 || true
      dig @127.0.0.1 -p "$CO_PORT" +tries=1 +time=1 "$name" "$type" >/dev/null 2>&1 || true
    done <"$file"
  fi
  measure "$scenario" "$file"
  stop_servers
done

printf '\n===== summary =====\n'
printf '%s\n' "${SUMMARY[@]}"
