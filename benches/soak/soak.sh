#!/usr/bin/env bash
# Soak: mixed dnsperf load against clusterdns for DURATION seconds while the Kubernetes API
# churns (EndpointSlice updates through the fake API server) and an upstream flaps (killed and
# restarted every FLAP_EVERY seconds, down for FLAP_DOWN). Reports lost queries (target 0),
# rcodes, latency p50/p99/p99.9 and RSS at start and end (no growth). Not part of CI.
#
#   benches/soak/soak.sh                  # 10 minutes
#   DURATION=60 QPS=1000 benches/soak/soak.sh
#
# Environment [defaults]: DURATION [600] seconds, QPS [2000] offered queries/s, CHURN [50]
# API updates/s, FLAP_EVERY [30] s, FLAP_DOWN [10] s, CLUSTERDNS [cargo build --release],
# SERVER_CPUS [0], CLIENT_CPUS [1].
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DURATION="${DURATION:-600}"
QPS="${QPS:-2000}"
CHURN="${CHURN:-50}"
FLAP_EVERY="${FLAP_EVERY:-30}"
FLAP_DOWN="${FLAP_DOWN:-10}"
SERVER_CPUS="${SERVER_CPUS:-0}"
CLIENT_CPUS="${CLIENT_CPUS:-1}"

for tool in dnsperf curl python3 taskset; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "installing $tool ..."
    pkg="$tool"; [ "$tool" = taskset ] && pkg=util-linux
    apt-get install -y -qq "$pkg" >/dev/null
  fi
done
if [ -z "${CLUSTERDNS:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked --bin clusterdns >&2)
  CLUSTERDNS="${CARGO_TARGET_DIR:-$ROOT/target}/release/clusterdns"
fi

WORK="$(mktemp -d /tmp/clusterdns-soak.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${UP_PID:-}" ] && kill "$UP_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The fake API with the demo cluster.
python3 "$ROOT/tests/stand-in/fake_apiserver.py" --listen 127.0.0.1:0 \
  --fixture "$ROOT/tests/stand-in/demo.json" > "$WORK/api.out" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do grep -q listening "$WORK/api.out" 2>/dev/null && break; sleep 0.1; done
API="$(sed -n 's/.*listening on //p' "$WORK/api.out")"

# The upstream: a second clusterdns serving corp.example (web.prod.svc.corp.example).
UP_PORT="$(free_port)"
mkdir -p "$WORK/up/manifests"
cat > "$WORK/up/manifests/web.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec: {clusterIP: 10.200.0.5, ports: [{name: http, port: 80}]}
YAML
cat > "$WORK/up/clusterdns.toml" <<TOML
[admin]
lameduck = 0
[[server]]
listen = ["127.0.0.1:$UP_PORT"]
zones = ["corp.example"]
[server.kubernetes]
zones = ["corp.example"]
manifests = "manifests"
ttl = 2
TOML
start_upstream() {
  taskset -c "$CLIENT_CPUS" "$CLUSTERDNS" --config "$WORK/up/clusterdns.toml" >/dev/null 2>&1 &
  UP_PID=$!
}
start_upstream

PORT="$(free_port)"
cat > "$WORK/clusterdns.toml" <<TOML
[admin]
ready = "127.0.0.1:0"
[[server]]
listen = ["127.0.0.1:$PORT"]
[server.kubernetes]
endpoint = "$API"
pods = "insecure"
fallthrough = ["in-addr.arpa", "ip6.arpa"]
[server.forward]
to = ["127.0.0.1:$UP_PORT"]
timeout = "1s"
[server.cache]
min_ttl = 0
serve_stale = "1h"
TOML
taskset -c "$SERVER_CPUS" "$CLUSTERDNS" --config "$WORK/clusterdns.toml" > "$WORK/server.out" 2> "$WORK/server.err" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 100); do grep -q "listening on" "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

cat > "$WORK/queries.txt" <<'Q'
frontend.shop.svc.cluster.local A
frontend.shop.svc.cluster.local AAAA
cart.shop.svc.cluster.local A
cart.shop.svc.cluster.local AAAA
postgres.data.svc.cluster.local A
_postgres._tcp.postgres.data.svc.cluster.local SRV
10.0.96.10.in-addr.arpa PTR
nosuch.shop.svc.cluster.local A
frontend.shop.svc.cluster.local.shop.svc.cluster.local A
web.prod.svc.corp.example A
web.prod.svc.corp.example AAAA
Q

# Warm up, then measure RSS at the start.
dig @127.0.0.1 -p "$PORT" +short web.prod.svc.corp.example >/dev/null 2>&1 || true
sleep 1
RSS_START="$(rss "$SERVER_PID")"

# API churn: CHURN updates/s, bounded by DURATION.
(
  pause="$(python3 -c "print(1/$CHURN)")"
  end=$((SECONDS + DURATION)); n=0
  while [ $SECONDS -lt $end ]; do
    ip="10.244.60.$((n % 250 + 1))"
    curl -s -o /dev/null -X POST "$API/__control/apply" -d "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"soak-$((n % 20))\",\"namespace\":\"shop\",\"labels\":{\"kubernetes.io/service-name\":\"cart\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"$ip\"],\"conditions\":{\"ready\":true}}],\"ports\":[{\"name\":\"grpc\",\"port\":9090,\"protocol\":\"TCP\"}]}" || true
    n=$((n + 1))
    sleep "$pause"
  done
  echo "$n" > "$WORK/churn.count"
) &
PIDS+=($!)

# Upstream flapping, bounded by DURATION.
(
  trap 'kill "$UP_PID" 2>/dev/null || true' EXIT
  end=$((SECONDS + DURATION)); flaps=0
  while [ $((SECONDS + FLAP_EVERY)) -lt $end ]; do
    sleep "$FLAP_EVERY"
    kill -9 "$UP_PID" 2>/dev/null || true
    sleep "$FLAP_DOWN"
    start_upstream
    flaps=$((flaps + 1))
  done
  echo "$flaps" > "$WORK/flaps.count"
) &
PIDS+=($!)

echo "soak: ${DURATION}s at ${QPS} q/s, ${CHURN} API updates/s, upstream down ${FLAP_DOWN}s every ${FLAP_EVERY}s" >&2
taskset -c "$CLIENT_CPUS" dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" -l "$DURATION" \
  -Q "$QPS" -c 4 -t 2 -v > "$WORK/dnsperf.out" 2>&1 || true
RSS_END="$(rss "$SERVER_PID")"
sleep 2
python3 - "$WORK/dnsperf.out" "$RSS_START" "$RSS_END" "$WORK" <<'PY'
import re, sys, os
out, rss_start, rss_end, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lat, rcodes = [], {}
sent = completed = lost = 0
for line in open(out):
    m = re.match(r"> (\S+) (\S+) (\S+) ([0-9.]+)", line)
    if m:
        rcodes[m.group(1)] = rcodes.get(m.group(1), 0) + 1
        lat.append(float(m.group(4)))
    m = re.search(r"Queries sent:\s+(\d+)", line)
    if m: sent = int(m.group(1))
    m = re.search(r"Queries completed:\s+(\d+)", line)
    if m: completed = int(m.group(1))
    m = re.search(r"Queries lost:\s+(\d+)", line)
    if m: lost = int(m.group(1))
lat.sort()
def pct(p):
    return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")
def count(name):
    path = os.path.join(work, name)
    return open(path).read().strip() if os.path.exists(path) else "?"
print(f"queries sent {sent}, completed {completed}, lost {lost}")
print("rcodes " + ", ".join(f"{k} {v}" for k, v in sorted(rcodes.items())))
print(f"latency ms: p50 {pct(0.50):.3f}  p99 {pct(0.99):.3f}  p99.9 {pct(0.999):.3f}")
print(f"RSS kB: start {rss_start}, end {rss_end}")
print(f"API updates {count('churn.count')}, upstream flaps {count('flaps.count')}")
PY
