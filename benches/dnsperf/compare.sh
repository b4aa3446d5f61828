#!/usr/bin/env bash
# Side-by-side benchmark of clusterdns and CoreDNS 1.11 with dnsperf, on generated clusters of
# given sizes, in one run; reported as medians and ratios clusterdns/CoreDNS in a markdown table
# (printed at the end and written to benches/dnsperf/last-results.md).
#
#   benches/dnsperf/compare.sh [--sizes "100:1000 5000:50000"] [--rounds 3] [--pods-verified] ...
#   SIZES="100:1000 5000:50000 10000:100000" benches/dnsperf/compare.sh
#
# For every size SERVICES:PODS:
#   1. benches/dnsperf/gen_bench_cluster.py writes a `kind: List` fixture (Namespaces, ClusterIP and
#      headless Services, EndpointSlices with the pods spread over the Services, Pods) and the query
#      files of the cluster and search mixes; the fake Kubernetes API server
#      tests/stand-in/fake_apiserver.py serves it (its load time and LIST times are reported).
#      The size `demo` serves tests/stand-in/demo.json with benches/dnsperf/queries-cluster.txt
#      (no search mix).
#   2. Both servers run kubeadm's default configuration, adapted: deploy/coredns/Corefile.kubeadm
#      for CoreDNS and deploy/kubernetes/configmap.yaml for clusterdns, with the stand-in as
#      endpoint, loopback addresses (free ports), forward to a local upstream (a third CoreDNS
#      serving benches/dnsperf/example.org.zone) and lameduck LAMEDUCK (so stopping is quick).
#      PODS_VERIFIED=1 switches both from `pods insecure` to `pods verified` (they then watch Pods).
#   3. Unless CHECK=0, both run at once and CHECK questions of every mix (spread over the query
#      file) are asked of both with dig; answers (rcode, flags but ra, every section, without
#      TTLs) are compared and differences printed (README "Where clusterdns answers differently"
#      lists the known ones).
#   4. ROUNDS rounds, clusterdns and CoreDNS alternating (ABBA), each run a fresh process pinned
#      to SERVER_CPUS: time from process start to /ready 200 (polled every 10 ms), VmRSS then;
#      per mix a warm-up pass (dnsperf -n 1: caches filled), a saturation run (DURATION s,
#      -c CLIENTS -q OUTSTANDING -Q MAX_QPS: queries/s, server CPU time per query from
#      /proc/PID/stat, response codes) and a fixed-load run (-Q LOAD_QPS for LOAD_DURATION s with
#      -v: latency p50/p99/p99.9 over every query, a lost one counting as slowest); VmHWM at the
#      end. dnsperf, the stand-in and the upstream run on CLIENT_CPUS. Also recorded, as noise
#      gauges: the 1-minute load average, the CPU time other processes took on SERVER_CPUS, and
#      how long the server's threads sat runnable waiting for a CPU (/proc/PID/task/*/schedstat).
#   Mixes (MIXES): cluster (names drawn from the cluster: ClusterIP A, headless A, SRV, PTR, pod
#   A, NXDOMAIN, AAAA NODATA), search (ndots:5 search expansions of short names as a pod sends
#   them, mostly NXDOMAIN), external (benches/dnsperf/queries-forward.txt through the forwarder,
#   cache hits once warm), misses (unique names under miss.example.org, which the upstream answers
#   with a wildcard: every query a cache miss sent upstream; no warm-up, MISSES names for the
#   saturation run and another MISSES/4 for the latency run, the misses checked against the
#   servers' cache-miss counters and reported as a share of the queries answered).
#   With UNBOUND=1 (the default when the external or misses mix runs), unbound joins the rounds of
#   the first size for those mixes: a forwarding cache (one thread, no validator) in front of the
#   same upstream.
#   With KNOT=1 (the default when the cluster mix runs), Knot DNS joins the rounds of the first
#   size for the cluster mix: an authoritative server (one UDP worker) serving the same cluster
#   as static zones, written from clusterdns's AXFR of cluster.local plus its answers to every
#   question of the cluster query file (PTRs, pod names); CHECK questions are compared with
#   clusterdns's answers.
#
# Every figure is the median over the rounds; ratios are the median of the per-round ratios.
# Installs what is missing: dnsperf and dig (apt-get), CoreDNS (npm, into TOOLS_DIR), and builds
# clusterdns with `cargo build --release` unless CLUSTERDNS is given. Every wait and loop is
# bounded (TOTAL_TIMEOUT for the whole run); every process started is stopped on exit.
#
# Options (each also an environment variable; defaults in brackets):
#   --sizes LIST         SIZES: SERVICES:PODS pairs or `demo` ["100:1000 5000:50000 10000:100000"]
#   --mixes LIST         MIXES ["cluster search external"]
#   --rounds N           ROUNDS: runs per server and size [3]
#   --duration S         DURATION: seconds per saturation run [10]
#   --load-qps N         LOAD_QPS: offered load of the latency run [10000]
#   --load-duration S    LOAD_DURATION [10]
#   --pods-verified      PODS_VERIFIED=1 [0]
#   --check N            CHECK: questions per mix compared with dig, 0 for none [30]
#   --results FILE       RESULTS [benches/dnsperf/last-results.md]
#   --no-unbound         UNBOUND=0 [1]
#   --no-knot            KNOT=0 [1]
# Environment only:
#   CLUSTERDNS_EXTRA (TOML appended to clusterdns's [[server]]: e.g. [server.hosts] or
#   [[server.template]] tables, to measure what a stage costs), CLUSTERDNS, CARGO_TARGET_DIR, COREDNS, COREDNS_NPM [coredns-dist-linux-x64@1.11.1-3],
#   TOOLS_DIR [target/bench-tools], QUERIES (lines per generated query file) [20000], SEED [8],
#   CLIENTS [4], OUTSTANDING [100], MAX_QPS [200000], SERVER_CPUS [0], CLIENT_CPUS [1],
#   LAMEDUCK [1s], API_TIMEOUT (stand-in start) [600], READY_TIMEOUT [300],
#   UNBOUND_BIN [unbound], KNOT_BIN [knotd], MISSES (names per miss file) [400000], TOTAL_TIMEOUT [10800], STRICT (stop when answers differ) [0], SHOW_ANSWERS [0], KEEP_WORK [0].
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="$ROOT/benches/dnsperf"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TOOLS_DIR="${TOOLS_DIR:-$ROOT/target/bench-tools}"
COREDNS_NPM="${COREDNS_NPM:-coredns-dist-linux-x64@1.11.1-3}"
SIZES="${SIZES:-100:1000 5000:50000 10000:100000}"
MIXES="${MIXES:-cluster search external misses}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
LOAD_QPS="${LOAD_QPS:-10000}"
LOAD_DURATION="${LOAD_DURATION:-10}"
PODS_VERIFIED="${PODS_VERIFIED:-0}"
CHECK="${CHECK:-30}"
RESULTS="${RESULTS:-$BENCH/last-results.md}"
QUERIES="${QUERIES:-20000}"
SEED="${SEED:-8}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-100}"
MAX_QPS="${MAX_QPS:-200000}"
SERVER_CPUS="${SERVER_CPUS:-0}"
CLIENT_CPUS="${CLIENT_CPUS:-1}"
LAMEDUCK="${LAMEDUCK:-1s}"
API_TIMEOUT="${API_TIMEOUT:-600}"
READY_TIMEOUT="${READY_TIMEOUT:-300}"
TOTAL_TIMEOUT="${TOTAL_TIMEOUT:-10800}"
STRICT="${STRICT:-0}"
SHOW_ANSWERS="${SHOW_ANSWERS:-0}"
KEEP_WORK="${KEEP_WORK:-0}"
UNBOUND="${UNBOUND:-1}"
UNBOUND_BIN="${UNBOUND_BIN:-unbound}"
KNOT="${KNOT:-1}"
KNOT_BIN="${KNOT_BIN:-knotd}"
MISSES="${MISSES:-400000}"

log() { printf '%s\n' "== $*" >&2; }
die() { printf 'dnsperf-compare: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="${2:?}"; shift 2 ;;
    --sizes=*) SIZES="${1#*=}"; shift ;;
    --mixes) MIXES="${2:?}"; shift 2 ;;
    --mixes=*) MIXES="${1#*=}"; shift ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --rounds=*) ROUNDS="${1#*=}"; shift ;;
    --duration) DURATION="${2:?}"; shift 2 ;;
    --duration=*) DURATION="${1#*=}"; shift ;;
    --load-qps) LOAD_QPS="${2:?}"; shift 2 ;;
    --load-qps=*) LOAD_QPS="${1#*=}"; shift ;;
    --load-duration) LOAD_DURATION="${2:?}"; shift 2 ;;
    --load-duration=*) LOAD_DURATION="${1#*=}"; shift ;;
    --pods-verified) PODS_VERIFIED=1; shift ;;
    --no-unbound) UNBOUND=0; shift ;;
    --no-knot) KNOT=0; shift ;;
    --check) CHECK="${2:?}"; shift 2 ;;
    --check=*) CHECK="${1#*=}"; shift ;;
    --results) RESULTS="${2:?}"; shift 2 ;;
    --results=*) RESULTS="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

for v in ROUNDS DURATION LOAD_QPS LOAD_DURATION CHECK QUERIES CLIENTS OUTSTANDING MAX_QPS \
  API_TIMEOUT READY_TIMEOUT TOTAL_TIMEOUT MISSES; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 50 ] || die "ROUNDS must be 1..50"
for size in $SIZES; do
  [[ "$size" =~ ^[0-9]+:[0-9]+$ || "$size" == demo ]] || die "a size is SERVICES:PODS or demo, not '$size'"
done
for mix in $MIXES; do
  case "$mix" in cluster | search | external | misses) ;; *) die "unknown mix $mix (cluster, search, external, misses)" ;; esac
done
if [ "$PODS_VERIFIED" = 1 ]; then PODS_MODE=verified; else PODS_MODE=insecure; fi
case "$RESULTS" in /*) ;; *) RESULTS="$PWD/$RESULTS" ;; esac

START_SECONDS=$SECONDS
check_deadline() {
  [ $((SECONDS - START_SECONDS)) -lt "$TOTAL_TIMEOUT" ] \
    || die "TOTAL_TIMEOUT ($TOTAL_TIMEOUT s) exceeded during: $*"
}

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
command -v curl >/dev/null 2>&1 || { log "installing curl"; apt_install curl; }
case " $MIXES " in *" external "* | *" misses "*) ;; *) UNBOUND=0 ;; esac
case " $MIXES " in *" cluster "*) ;; *) KNOT=0 ;; esac
if [ "$UNBOUND" = 1 ] && ! command -v "$UNBOUND_BIN" >/dev/null 2>&1; then
  log "installing unbound"
  # RUNLEVEL=1: the package must not start its own resolver.
  RUNLEVEL=1 apt_install unbound
  $SUDO pkill -x unbound 2>/dev/null || true
fi
if [ "$KNOT" = 1 ] && ! command -v "$KNOT_BIN" >/dev/null 2>&1; then
  log "installing Knot DNS"
  RUNLEVEL=1 apt_install knot
  $SUDO pkill -x knotd 2>/dev/null || true
fi

if [ -z "${COREDNS:-}" ]; then
  COREDNS="$TOOLS_DIR/node_modules/coredns-dist-linux-x64/coredns"
  if [ ! -x "$COREDNS" ]; then
    command -v npm >/dev/null 2>&1 || { log "installing npm"; apt_install npm; }
    log "installing CoreDNS ($COREDNS_NPM) into $TOOLS_DIR"
    mkdir -p "$TOOLS_DIR"
    timeout 600 npm install --prefix "$TOOLS_DIR" --no-save --no-audit --no-fund --silent "$COREDNS_NPM" >/dev/null
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
RUNS="$WORK/runs.tsv"
META="$WORK/meta.tsv"
: >"$RUNS"
: >"$META"

stop_pid() {
  local pid="$1" i
  [ -n "$pid" ] || return 0
  if kill -TERM "$pid" 2>/dev/null; then
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  # Forget it, so that cleanup never signals a recycled pid.
  local kept=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  PIDS=("${kept[@]+"${kept[@]}"}")
}

cleanup() {
  local pid
  trap - EXIT INT TERM HUP PIPE
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    stop_pid "$pid"
  done
  if [ "$KEEP_WORK" = 1 ]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
# A signal (or stdout/stderr going away: SIGPIPE) ends the run through the EXIT trap too.
trap 'exit 130' INT TERM HUP PIPE

# free_ports N: N distinct ports, each free for both UDP and TCP on 127.0.0.1.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
want, held, ports = int(sys.argv[1]), [], []
for _ in range(50 * want):
    if len(ports) == want:
        break
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    held += [t, u]
    ports.append(port)
if len(ports) < want:
    raise SystemExit("no free ports")
print(" ".join(map(str, ports)))
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

# record SIZE ROUND SERVER MIX METRIC VALUE (one line of RUNS); meta SIZE KEY VALUE.
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RUNS"; }
meta() { printf '%s\t%s\t%s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\t\n' '  ')" >>"$META"; }

# --- the upstream for forwarded names ----------------------------------------------------------

UP_PID=""
UP_PORT=""
start_upstream() {
  UP_PORT="$(free_ports 1)"
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

# --- the stand-in API server -----------------------------------------------------------------

API_PID=""
API_URL=""
# start_api FIXTURE DIR SIZE: starts the stand-in on FIXTURE; records its load and LIST times.
start_api() {
  local fixture="$1" dir="$2" size="$3" t0 t1 line kind path secs
  t0="$(date +%s%N)"
  taskset -c "$CLIENT_CPUS" python3 "$ROOT/tests/stand-in/fake_apiserver.py" \
    --listen 127.0.0.1:0 --fixture "$fixture" >"$dir/apiserver.out" 2>"$dir/apiserver.err" &
  API_PID=$!
  PIDS+=("$API_PID")
  line="$(wait_for_line "$dir/apiserver.out" '^fake-apiserver: listening on ' "$API_PID" "$API_TIMEOUT")" \
    || { cat "$dir/apiserver.err" >&2; die "the fake API server did not load $fixture within $API_TIMEOUT s"; }
  t1="$(date +%s%N)"
  API_URL="${line##* }"
  meta "$size" api_load_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
  for kind in services endpointslices pods; do
    case "$kind" in
      endpointslices) path="/apis/discovery.k8s.io/v1/endpointslices?limit=500" ;;
      *) path="/api/v1/$kind?limit=500" ;;
    esac
    secs="$(timeout 300 curl --noproxy '*' -s -o /dev/null -w '%{time_total}' "$API_URL$path" || echo '?')"
    meta "$size" "list_${kind}_s" "$(printf '%.2f' "$secs" 2>/dev/null || echo '?')"
  done
  meta "$size" objects "$(timeout 60 curl --noproxy '*' -s "$API_URL/__control/state" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["objects"])' 2>/dev/null || echo '?')"
  log "[$size] fake API server at $API_URL (loaded in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s)"
}

# --- the servers under test --------------------------------------------------------------------

# launch_server clusterdns|coredns|unbound|knot DIR: starts one server on the current API and
# waits for /ready. Sets L_PID, L_PORT, L_MP (metrics port), L_READY_MS (process start to /ready
# 200), L_RSS (VmRSS then, KiB). L_EXTRA: more TOML for clusterdns's block (this launch only).
L_PID="" L_PORT="" L_READY_MS="" L_RSS="" L_MP="" L_EXTRA=""
launch_server() {
  local server="$1" dir="$2" ports dns hp rp mp start
  mkdir -p "$dir"
  read -r dns hp rp mp <<<"$(free_ports 4)"
  L_MP="$mp"
  if [ "$server" = knot ]; then
    launch_knot "$dir" "$dns"
    return 0
  fi
  if [ "$server" = unbound ]; then
    cat >"$dir/unbound.conf" <<EOF
server:
    interface: 127.0.0.1@$dns
    port: $dns
    do-daemonize: no
    num-threads: 1
    so-reuseport: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    chroot: ""
    username: ""
    directory: "$dir"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    module-config: "iterator"
    qname-minimisation: no
    cache-max-ttl: 30
    cache-max-negative-ttl: 30
remote-control:
    control-enable: yes
    control-interface: $dir/control.sock
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$UP_PORT
EOF
    taskset -c "$SERVER_CPUS" "$UNBOUND_BIN" -d -c "$dir/unbound.conf" >"$dir/out" 2>&1 &
    L_PID=$!
    PIDS+=("$L_PID")
    L_PORT="$dns"
    L_READY_MS="" L_RSS=""
    wait_for_answer "$L_PORT" example.org A 30 \
      || { tail -20 "$dir/out" >&2; die "unbound does not answer on $L_PORT"; }
    L_RSS="$(rss_now "$L_PID")"
    return 0
  fi
  if [ "$server" = coredns ]; then
    # deploy/coredns/Corefile.kubeadm, adapted.
    cat >"$dir/Corefile" <<EOF
.:$dns {
    bind 127.0.0.1
    errors
    health 127.0.0.1:$hp {
       lameduck $LAMEDUCK
    }
    ready 127.0.0.1:$rp
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       endpoint $API_URL
       pods $PODS_MODE
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus 127.0.0.1:$mp
    forward . 127.0.0.1:$UP_PORT {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
EOF
    start="$(date +%s%N)"
    (cd "$dir" && exec taskset -c "$SERVER_CPUS" "$COREDNS" -conf Corefile) >"$dir/out" 2>&1 &
  else
    # deploy/kubernetes/configmap.yaml, adapted.
    cat >"$dir/clusterdns.toml" <<EOF
[admin]
health = "127.0.0.1:$hp"
ready = "127.0.0.1:$rp"
metrics = "127.0.0.1:$mp"
lameduck = "$LAMEDUCK"
reload_interval = "30s"

[[server]]
listen      = ["127.0.0.1:$dns"]
zones       = ["."]
loadbalance = true
log         = false

[server.kubernetes]
zones = ["cluster.local", "in-addr.arpa", "ip6.arpa"]
endpoint = "$API_URL"
pods = "$PODS_MODE"
fallthrough = ["in-addr.arpa", "ip6.arpa"]
ttl = 30

[server.forward]
to = ["127.0.0.1:$UP_PORT"]
max_concurrent = 1000

[server.cache]
max_ttl = 30
negative_max_ttl = 30
${CLUSTERDNS_EXTRA:-}
${L_EXTRA}
EOF
    start="$(date +%s%N)"
    RUST_LOG="${RUST_LOG:-warn}" taskset -c "$SERVER_CPUS" "$CLUSTERDNS" --config "$dir/clusterdns.toml" \
      >"$dir/out" 2>&1 &
  fi
  L_PID=$!
  PIDS+=("$L_PID")
  L_PORT="$dns"
  L_READY_MS="$(taskset -c "$CLIENT_CPUS" python3 "$BENCH/benchtool.py" wait-ready \
    --url "http://127.0.0.1:$rp/ready" --start-ns "$start" --pid "$L_PID" --timeout "$READY_TIMEOUT")" \
    || { tail -20 "$dir/out" >&2; die "$server did not become ready"; }
  L_RSS="$(rss_now "$L_PID")"
  wait_for_answer "$L_PORT" kubernetes.default.svc.cluster.local A 30 \
    || { tail -20 "$dir/out" >&2; die "$server is ready but does not answer on $L_PORT"; }
}

# launch_knot DIR PORT: Knot DNS on PORT serving the zone files KNOT_ZONES holds (one UDP worker,
# pinned like the others); waits until it answers.
KNOT_ZONES=""
launch_knot() {
  local dir="$1" port="$2" zone
  mkdir -p "$dir/db"
  {
    printf 'server:\n    listen: 127.0.0.1@%s\n    rundir: "%s"\n' "$port" "$dir"
    printf '    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n'
    printf 'database:\n    storage: "%s/db"\n' "$dir"
    printf 'log:\n  - target: stderr\n    any: warning\n'
    printf 'template:\n  - id: default\n    storage: "%s"\n    zonefile-sync: -1\n    journal-content: none\n' "$KNOT_ZONES"
    printf 'zone:\n'
    for zone in "$KNOT_ZONES"/*.zone; do
      printf '  - domain: %s\n    file: "%s"\n' "$(basename "$zone" .zone)" "$zone"
    done
  } >"$dir/knot.conf"
  taskset -c "$SERVER_CPUS" "$KNOT_BIN" -c "$dir/knot.conf" >"$dir/out" 2>&1 &
  L_PID=$!
  PIDS+=("$L_PID")
  L_PORT="$port"
  L_READY_MS="" L_RSS=""
  wait_for_answer "$L_PORT" kubernetes.default.svc.cluster.local A 60 \
    || { tail -20 "$dir/out" >&2; die "Knot does not answer on $L_PORT"; }
  L_RSS="$(rss_now "$L_PID")"
}

# knot_zones SIZE DIR: writes the cluster as static zone files into DIR/knot-zones (KNOT_ZONES):
# clusterdns's AXFR of cluster.local and its answers to every question of the cluster mix (for
# the PTRs and pod names a transfer does not list), each record in the zone it belongs to.
knot_zones() {
  local size="$1" dir="$2"
  check_deadline "$size knot zones"
  L_EXTRA=$'[server.transfer]\nto = ["*"]'
  launch_server clusterdns "$dir/zonegen"
  L_EXTRA=""
  timeout 120 dig @127.0.0.1 -p "$L_PORT" +tcp +nocmd +nostats +nocomments +noadditional \
    cluster.local AXFR >"$dir/zonegen/axfr.txt" \
    || die "AXFR of cluster.local from clusterdns failed"
  awk 'NF >= 2 { print $1, $2 }' "${MIX_FILE[cluster]}" >"$dir/zonegen/batch.txt"
  timeout 600 dig @127.0.0.1 -p "$L_PORT" +tries=2 +time=2 +noall +answer -f "$dir/zonegen/batch.txt" \
    >"$dir/zonegen/answers.txt" 2>/dev/null || true
  stop_pid "$L_PID"
  KNOT_ZONES="$dir/knot-zones"
  python3 "$BENCH/benchtool.py" knot-zones --out "$KNOT_ZONES" \
    "$dir/zonegen/axfr.txt" "$dir/zonegen/answers.txt" >&2 \
    || die "could not write Knot's zone files"
}

# --- same answers? ---------------------------------------------------------------------------

# The answer to one question, normalized: rcode, flags (without ra), then every record of the
# answer, authority and additional sections, each prefixed with its section, lower-case, sorted;
# without TTLs (CoreDNS's cache counts them down) and SOA serials.
normalized_answer() {
  local port="$1" name="$2" type="$3" out
  out="$(dig @127.0.0.1 -p "$port" +tries=2 +time=2 +noall +comments +answer +authority +additional \
    "$name" "$type" 2>&1 || true)"
  printf 'status=%s flags=%s\n' \
    "$(printf '%s\n' "$out" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p' | sed -n 1p)" \
    "$(printf '%s\n' "$out" | sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' | sed -n 1p | tr ' ' '\n' | { grep -v '^ra$' || true; } | sort | tr '\n' ' ' | sed 's/ $//')"
  printf '%s\n' "$out" | awk '
    /^;; ANSWER SECTION:/ { section = "answer"; next }
    /^;; AUTHORITY SECTION:/ { section = "authority"; next }
    /^;; ADDITIONAL SECTION:/ { section = "additional"; next }
    /^;/ || NF == 0 { next }
    {
      $1 = $1
      if (toupper($4) == "SOA") $7 = "SERIAL"
      $2 = ""
      print section ": " tolower($0)
    }' | tr -s ' ' | sort
}

# compare_answers SIZE MIX FILE CD_PORT CO_PORT: CHECK questions spread over FILE.
compare_answers() {
  local size="$1" mix="$2" file="$3" cd_port="$4" co_port="$5" peer="${6:-CoreDNS}"
  local name type differ=0 total=0 a b lines step
  lines="$(wc -l <"$file")"
  step=$((lines / CHECK))
  [ "$step" -ge 1 ] || step=1
  while read -r name type; do
    [ -z "$name" ] && continue
    total=$((total + 1))
    a="$(normalized_answer "$cd_port" "$name" "$type")"
    b="$(normalized_answer "$co_port" "$name" "$type")"
    if [ "$SHOW_ANSWERS" = 1 ]; then
      printf '\n[%s %s] %s %s\n--- clusterdns\n%s\n--- %s\n%s\n' "$size" "$mix" "$name" "$type" "$a" "$peer" "$b"
    fi
    if [[ "$a" == "status= "* || "$b" == "status= "* ]]; then
      differ=$((differ + 1))
      printf '%s %s (no answer)\n' "$name" "$type" >>"$WORK/diffs-$size-$mix"
      printf '\n[%s %s] NO ANSWER (timeout) for %s %s: clusterdns "%s", %s "%s"\n' \
        "$size" "$mix" "$name" "$type" "${a%%$'\n'*}" "$peer" "${b%%$'\n'*}"
    elif [ "$a" != "$b" ]; then
      differ=$((differ + 1))
      printf '%s %s\n' "$name" "$type" >>"$WORK/diffs-$size-$mix"
      printf '\n[%s %s] DIFFERENT ANSWER: %s %s\n--- clusterdns\n%s\n--- %s\n%s\n' \
        "$size" "$mix" "$name" "$type" "$a" "$peer" "$b"
    fi
  done < <(awk -v step="$step" -v n="$CHECK" 'NF && (NR - 1) % step == 0 && taken < n { taken++; print }' "$file")
  printf '[%s %s] answers compared: %d questions, %d differ\n' "$size" "$mix" "$total" "$differ"
  local detail=""
  [ "$differ" -gt 0 ] && detail=" ($(head -3 "$WORK/diffs-$size-$mix" | paste -sd ';' | sed 's/;/; /g')$([ "$differ" -gt 3 ] && echo '; …' || true))"
  meta "$size" "check_$mix" "$total ($differ)$detail"
  if [ "$differ" -gt 0 ] && [ "$STRICT" = 1 ]; then
    die "answers differ (STRICT=1)"
  fi
}

# --- measuring -------------------------------------------------------------------------------

CLK_TCK="$(getconf CLK_TCK)"
# CPU time (user + system, all threads) a process has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
SERVER_CPU_LIST="$(python3 -c '
import sys
out = []
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    out += range(int(a), int(b or a) + 1)
print(" ".join(map(str, out)))' "$SERVER_CPUS")"
# Ticks the server CPUs spent on tasks (user, nice, system, steal; not interrupts) and in all.
cpu_busy() {
  awk -v list="$SERVER_CPU_LIST" '
    BEGIN { n = split(list, c, " "); for (i = 1; i <= n; i++) want["cpu" c[i]] = 1 }
    ($1 in want) { busy += $2 + $3 + $4 + $9; all += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }
    END { print busy + 0, all + 0 }' /proc/stat
}
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# Nanoseconds the process's threads have spent runnable but waiting for a CPU (schedstat).
runq_ns() { cat "/proc/$1/task/"*/schedstat 2>/dev/null | awk '{ s += $2 } END { print s + 0 }'; }
# runq_rate NS_BEFORE NS_AFTER SECONDS: milliseconds of waiting per second.
runq_rate() { awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { printf "%.1f", (b - a) / 1e6 / s }'; }

dnsperf_cmd() {
  # dnsperf_cmd PORT FILE ARGS...: bounded in time whatever happens.
  local port="$1" file="$2"
  shift 2
  timeout 300 taskset -c "$CLIENT_CPUS" dnsperf -s 127.0.0.1 -p "$port" -d "$file" \
    -c "$CLIENTS" -q "$OUTSTANDING" -t 2 "$@"
}

# cache_misses SERVER DIR: the server's cache misses so far (its metrics, or unbound-control).
cache_misses() {
  case "$1" in
    unbound)
      timeout 20 unbound-control -c "$2/unbound.conf" stats_noreset 2>/dev/null \
        | sed -n 's/^total.num.cachemiss=//p' | sed -n 1p ;;
    knot) echo 0 ;;
    *)
      timeout 20 curl --noproxy '*' -s "http://127.0.0.1:$L_MP/metrics" \
        | awk '/^coredns_cache_misses_total/ { s += $NF } END { printf "%.0f\n", s }' ;;
  esac
}

# rcode_count NAME "RCODES LINE": how many answers had that rcode.
rcode_count() { printf '%s\n' "$2" | grep -oE "$1 [0-9]+" | awk '{ s += $2 } END { print s + 0 }'; }

# measure_mix SIZE ROUND SERVER MIX FILE PID PORT DIR
measure_mix() {
  local size="$1" round="$2" server="$3" mix="$4" file="$5" pid="$6" port="$7" dir="$8"
  local before after busy0 all0 busy1 all1 out stats rcodes lat rq0 rq1 misses0 misses1
  check_deadline "$size round $round $server $mix"
  if [ "$mix" != misses ]; then
    # Warm-up: one pass over the file (fills both servers' caches the same way).
    dnsperf_cmd "$port" "$file" -n 1 >"$dir/warm-$mix.out" 2>&1 || true
  fi

  # Saturation.
  out="$dir/sat-$mix.out"
  read -r busy0 all0 <<<"$(cpu_busy)"
  before="$(cpu_ticks "$pid")"
  rq0="$(runq_ns "$pid")"
  misses0="$(cache_misses "$server" "$dir")"
  dnsperf_cmd "$port" "$file" -l "$DURATION" -Q "$MAX_QPS" >"$out" 2>&1 || true
  rq1="$(runq_ns "$pid")"
  after="$(cpu_ticks "$pid")"
  misses1="$(cache_misses "$server" "$dir")"
  record "$size" "$round" "$server" "$mix" runq_sat "$(runq_rate "$rq0" "$rq1" "$DURATION")"
  read -r busy1 all1 <<<"$(cpu_busy)"
  record "$size" "$round" "$server" "$mix" loadavg "$(loadavg)"
  stats="$(awk -v ticks=$((after - before)) -v hz="$CLK_TCK" \
    -v busy=$((busy1 - busy0)) -v all=$((all1 - all0)) '
    /Queries completed:/ { done = $3 }
    /Queries lost:/ { lost = $3 }
    /Run time \(s\):/ { secs = $4 }
    /Queries per second:/ { qps = $4 }
    END {
      if (qps == "" || secs == 0 || done == 0) { print "nan nan nan nan nan"; exit }
      cpu = ticks / hz
      others = all > 0 ? 100 * (busy - ticks) / all : 0
      if (others < 0) others = 0
      printf "%.0f %s %.0f %.3f %.0f\n", qps, lost, 100 * cpu / secs, 1e6 * cpu / done, others
    }' "$out")"
  local qps lost cpu_pct cpu_us others
  read -r qps lost cpu_pct cpu_us others <<<"$stats"
  rcodes="$(sed -n 's/^ *Response codes: *//p' "$out" | sed -n 1p)"
  record "$size" "$round" "$server" "$mix" qps "$qps"
  record "$size" "$round" "$server" "$mix" cpu_us "$cpu_us"
  record "$size" "$round" "$server" "$mix" cpu_pct "$cpu_pct"
  record "$size" "$round" "$server" "$mix" lost_sat "$lost"
  record "$size" "$round" "$server" "$mix" others_pct "$others"
  record "$size" "$round" "$server" "$mix" rcodes "$rcodes"
  record "$size" "$round" "$server" "$mix" servfail_sat "$(rcode_count SERVFAIL "$rcodes")"
  if [ "$mix" = misses ] && [ "$server" != knot ]; then
    record "$size" "$round" "$server" "$mix" miss_pct "$(awk -v a="${misses0:-0}" -v b="${misses1:-0}" \
      -v n="$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$out")" \
      'BEGIN { if (n > 0) printf "%.1f", 100 * (b - a) / n; else print "nan" }')"
  fi

  # Fixed load, every query's latency.
  out="$dir/load-$mix.out"
  before="$(cpu_ticks "$pid")"
  rq0="$(runq_ns "$pid")"
  dnsperf_cmd "$port" "${LOAD_FILE[$mix]:-$file}" -l "$LOAD_DURATION" -Q "$LOAD_QPS" -v >"$out" 2>&1 || true
  rq1="$(runq_ns "$pid")"
  after="$(cpu_ticks "$pid")"
  local runq_load
  runq_load="$(runq_rate "$rq0" "$rq1" "$LOAD_DURATION")"
  record "$size" "$round" "$server" "$mix" runq_load "$runq_load"
  local p50 p99 p999 completed lost_load
  read -r p50 p99 p999 completed lost_load <<<"$(python3 "$BENCH/benchtool.py" latency "$out")"
  record "$size" "$round" "$server" "$mix" p50 "$p50"
  record "$size" "$round" "$server" "$mix" p99 "$p99"
  record "$size" "$round" "$server" "$mix" p999 "$p999"
  record "$size" "$round" "$server" "$mix" lost_load "$lost_load"
  record "$size" "$round" "$server" "$mix" servfail_load \
    "$(rcode_count SERVFAIL "$(sed -n 's/^ *Response codes: *//p' "$out" | sed -n 1p)")"
  record "$size" "$round" "$server" "$mix" cpu_us_load \
    "$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$completed" 'BEGIN { if (n > 0) printf "%.3f", 1e6 * t / hz / n; else print "nan" }')"
  if [ "$KEEP_WORK" = 1 ]; then gzip -f "$out"; else rm -f "$out"; fi  # one line per query
  printf '[%s] round %d %-10s %-8s %8s q/s  cpu %3s%%  %7s us/query  others %2s%%  load %s | at %s q/s: p50 %s p99 %s p99.9 %s ms, lost %s, run-queue wait %s ms/s\n' \
    "$size" "$round" "$server" "$mix" "$qps" "$cpu_pct" "$cpu_us" "$others" "$(loadavg)" \
    "$LOAD_QPS" "$p50" "$p99" "$p999" "$lost_load" "$runq_load"
}

# one_run SIZE ROUND SERVER: a fresh server process, every mix, stopped again.
one_run() {
  local size="$1" round="$2" server="$3" dir="$WORK/${1/:/-}/$3-$2" mix
  check_deadline "$size round $round $server start"
  launch_server "$server" "$dir"
  local mixes="$SIZE_MIXES"
  if [ "$server" = unbound ]; then
    mixes="$(peer_mixes external misses)"  # unbound has no cluster zone
  elif [ "$server" = knot ]; then
    mixes="cluster"  # Knot has the cluster only, as static zones
  else
    record "$size" "$round" "$server" - ready_ms "$L_READY_MS"
    record "$size" "$round" "$server" - rss_kb "$L_RSS"
  fi
  log "[$size] round $round $server: pid $L_PID on 127.0.0.1:$L_PORT, ready after ${L_READY_MS:-?} ms, VmRSS $((L_RSS / 1024)) MiB"
  for mix in $mixes; do
    measure_mix "$size" "$round" "$server" "$mix" "${MIX_FILE[$mix]}" "$L_PID" "$L_PORT" "$dir"
  done
  record "$size" "$round" "$server" - hwm_kb "$(peak_rss "$L_PID")"
  stop_pid "$L_PID"
}

# peer_mixes MIX...: those of the MIX arguments this size runs.
peer_mixes() {
  local mix out=""
  for mix in "$@"; do
    case " $SIZE_MIXES " in *" $mix "*) out+=" $mix" ;; esac
  done
  printf '%s\n' "${out# }"
}

human() {  # 1000 -> 1k, 50000 -> 50k, 100000 -> 100k
  awk -v n="$1" 'BEGIN { if (n >= 1000 && n % 1000 == 0) printf "%dk", n / 1000; else printf "%d", n }'
}

# --- run -------------------------------------------------------------------------------------

CD_VERSION="$("$CLUSTERDNS" --version 2>/dev/null || echo "$CLUSTERDNS")"
CO_VERSION="$("$COREDNS" -version 2>/dev/null | sed -n 1p || true)"
DNSPERF_VERSION="$(dnsperf -h 2>&1 | sed -n 's/^Version //p' | sed -n 1p || true)"
log "clusterdns: $CD_VERSION"
log "CoreDNS:    $CO_VERSION"
log "dnsperf $DNSPERF_VERSION; sizes: $SIZES; mixes: $MIXES; $ROUNDS rounds; saturation ${DURATION}s -c $CLIENTS -q $OUTSTANDING -Q $MAX_QPS; latency -Q $LOAD_QPS ${LOAD_DURATION}s; pods $PODS_MODE; servers on cpu $SERVER_CPUS, dnsperf on cpu $CLIENT_CPUS"

meta - date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta - cpu "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | sed -n 1p), $(nproc) CPUs"
meta - clusterdns_version "${CD_VERSION#clusterdns }"
meta - coredns_full "${CO_VERSION}"
meta - coredns_version "$(printf '%s' "$CO_VERSION" | sed -n 's/^CoreDNS-//p')"
meta - dnsperf_version "$DNSPERF_VERSION"
[ "$KNOT" = 1 ] && meta - knot_version "$("$KNOT_BIN" --version 2>/dev/null | sed -n 's/.*version //p' | sed -n 1p)"
[ "$UNBOUND" = 1 ] && meta - unbound_version "$("$UNBOUND_BIN" -V 2>/dev/null | sed -n 's/^Version //p' | sed -n 1p)"
meta - sizes "$SIZES"
meta - mixes "$MIXES"
meta - rounds "$ROUNDS"
meta - duration "$DURATION"
meta - load_qps "$LOAD_QPS"
meta - load_duration "$LOAD_DURATION"
meta - clients "$CLIENTS"
meta - outstanding "$OUTSTANDING"
meta - pods "$PODS_MODE"
meta - server_cpus "$SERVER_CPUS"
meta - client_cpus "$CLIENT_CPUS"
cmd="SIZES=\"$SIZES\""
[ "$MIXES" != "cluster search external misses" ] && cmd+=" MIXES=\"$MIXES\""
[ "$ROUNDS" != 3 ] && cmd+=" ROUNDS=$ROUNDS"
[ "$DURATION" != 10 ] && cmd+=" DURATION=$DURATION"
[ "$LOAD_QPS" != 10000 ] && cmd+=" LOAD_QPS=$LOAD_QPS"
[ "$LOAD_DURATION" != 10 ] && cmd+=" LOAD_DURATION=$LOAD_DURATION"
[ "$PODS_VERIFIED" = 1 ] && cmd+=" PODS_VERIFIED=1"
meta - command "$cmd benches/dnsperf/compare.sh"

start_upstream

# Unique names for the misses mix: one file for the saturation runs, another for the latency
# runs, a few for the answers compared (each server process sees each name once).
declare -A LOAD_FILE CHECK_FILE
case " $MIXES " in
  *" misses "*)
    python3 - "$WORK" "$MISSES" "$SEED" <<'PY'
import random, sys
work, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
for name, count in (("sat", n), ("load", max(1, n // 4)), ("check", 200)):
    with open(f"{work}/misses-{name}.txt", "w") as f:
        for i in range(count):
            f.write(f"{name[0]}{i:x}-{rng.getrandbits(32):08x}.miss.example.org A\n")
PY
    LOAD_FILE[misses]="$WORK/misses-load.txt"
    CHECK_FILE[misses]="$WORK/misses-check.txt"
    ;;
esac

declare -A MIX_FILE
for size in $SIZES; do
  check_deadline "$size"
  dir="$WORK/${size/:/-}"
  mkdir -p "$dir"
  MIX_FILE=()
  SIZE_MIXES=""
  if [ "$size" = demo ]; then
    fixture="$ROOT/tests/stand-in/demo.json"
    meta "$size" title "demo cluster"
    meta "$size" fixture "tests/stand-in/demo.json"
    MIX_FILE[cluster]="$BENCH/queries-cluster.txt"
  else
    services="${size%%:*}" pods="${size##*:}"
    fixture="$dir/cluster.json"
    meta "$size" title "$(human "$services") Services, $(human "$pods") Pods"
    log "[$size] generating the cluster ($services Services, $pods Pods)"
    timeout 900 python3 "$BENCH/gen_bench_cluster.py" --services "$services" --pods "$pods" \
      --seed "$SEED" --queries "$QUERIES" --out "$fixture" --queries-dir "$dir" 2>"$dir/gen.err" \
      || { cat "$dir/gen.err" >&2; die "gen_bench_cluster.py failed"; }
    cat "$dir/gen.err" >&2
    meta "$size" fixture "$(sed -n 's/^gen_bench_cluster: .*\.json: //p' "$dir/gen.err" | sed 's/, [0-9.]* s$//')"
    MIX_FILE[cluster]="$dir/queries-cluster.txt"
    MIX_FILE[search]="$dir/queries-search.txt"
  fi
  MIX_FILE[external]="$BENCH/queries-forward.txt"
  MIX_FILE[misses]="$WORK/misses-sat.txt"
  for mix in $MIXES; do
    if [ -n "${MIX_FILE[$mix]:-}" ]; then
      SIZE_MIXES+=" $mix"
    else
      log "[$size] no $mix queries for this size; skipped"
    fi
  done

  start_api "$fixture" "$dir" "$size"

  if [ "$CHECK" -gt 0 ]; then
    launch_server clusterdns "$dir/check-clusterdns"
    cd_pid="$L_PID" cd_port="$L_PORT"
    launch_server coredns "$dir/check-coredns"
    co_pid="$L_PID" co_port="$L_PORT"
    for mix in $SIZE_MIXES; do
      check_file="${CHECK_FILE[$mix]:-${MIX_FILE[$mix]}}"
      # Warm the forwarders' caches alike first (the external names are cache hits in the runs).
      dnsperf_cmd "$cd_port" "$check_file" -n 1 >/dev/null 2>&1 || true
      dnsperf_cmd "$co_port" "$check_file" -n 1 >/dev/null 2>&1 || true
      compare_answers "$size" "$mix" "$check_file" "$cd_port" "$co_port"
    done
    stop_pid "$cd_pid"
    stop_pid "$co_pid"
  fi

  peers=""
  if [ "$size" = "${SIZES%% *}" ]; then
    # The peers join the first size's rounds: unbound for forwarded names, Knot for cluster names.
    [ "$UNBOUND" = 1 ] && [ -n "$(peer_mixes external misses)" ] && peers+=" unbound"
    if [ "$KNOT" = 1 ] && [ -n "$(peer_mixes cluster)" ]; then
      knot_zones "$size" "$dir"
      peers+=" knot"
      if [ "$CHECK" -gt 0 ]; then
        launch_server clusterdns "$dir/check-clusterdns-knot"
        cd_pid="$L_PID" cd_port="$L_PORT"
        launch_server knot "$dir/check-knot"
        compare_answers "$size" knot "${MIX_FILE[cluster]}" "$cd_port" "$L_PORT" Knot
        stop_pid "$L_PID"
        stop_pid "$cd_pid"
      fi
    fi
  fi

  for round in $(seq 1 "$ROUNDS"); do
    order="clusterdns coredns$peers"
    if [ $((round % 2)) -eq 0 ]; then order="$(printf '%s\n' $order | tac | paste -sd ' ')"; fi
    for server in $order; do
      one_run "$size" "$round" "$server"
    done
  done
  stop_pid "$API_PID"
done

meta - elapsed "$((SECONDS - START_SECONDS))"
printf '\n'
mkdir -p "$(dirname "$RESULTS")"
python3 "$BENCH/benchtool.py" summarize --runs "$RUNS" --meta "$META" --out "$RESULTS"
log "written to $RESULTS (took $((SECONDS - START_SECONDS)) s)"
