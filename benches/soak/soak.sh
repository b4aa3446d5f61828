#!/usr/bin/env bash
# Soak: mixed dnsperf load against clusterdns for DURATION seconds while the Kubernetes API
# churns (EndpointSlice updates through the fake API server) and an upstream flaps (killed and
# restarted every FLAP_EVERY seconds, down for FLAP_DOWN). With FAULTS=1 (the default) the
# faults that used to take cluster DNS down happen on top, at fixed shares of DURATION:
#   10%  the API fails every request (HTTP 500) for a fifth of the run, and the config's `ttl`
#        is edited in the middle of that outage;
#   40%  16 TCP clients from 127.0.0.2 pipeline queries and never read, for 60 s;
#   55%  8,000 unique names a second for 8 s under a zone forwarded to a blackholed upstream;
#   70%  a manifest file of a second cluster zone gets a YAML syntax error for 30 s.
# A checker (benches/soak/faults.py) asks cluster names every 50 ms and counts wrong and lost
# answers (target 0). Reports lost queries, rcodes, latency p50/p99/p99.9 and RSS at start and
# end (target: within 10%). Not part of CI.
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
FAULTS="${FAULTS:-1}"
FAULTS_PY="$ROOT/benches/soak/faults.py"
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

# A second cluster zone from manifests (the syntax-error fault), and a zone forwarded to an
# upstream that never answers (the flood fault).
mkdir -p "$WORK/static"
cat > "$WORK/static/web.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec: {clusterIP: 10.201.0.5, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: prod}
spec: {clusterIP: 10.201.0.6, ports: [{name: http, port: 80}]}
YAML
BLACKHOLE_PORT="$(free_port)"
python3 "$FAULTS_PY" blackhole "$BLACKHOLE_PORT" "$((DURATION + 60))" &
PIDS+=($!)

PORT="$(free_port)"
write_config() {
  cat > "$WORK/clusterdns.toml.new" <<TOML
[admin]
ready = "127.0.0.1:0"
reload_interval = "1s"
[[server]]
listen = ["127.0.0.1:$PORT"]
[server.kubernetes]
endpoint = "$API"
pods = "insecure"
ttl = $1
fallthrough = ["in-addr.arpa", "ip6.arpa"]
[server.forward]
to = ["127.0.0.1:$UP_PORT"]
timeout = "1s"
[server.cache]
min_ttl = 0
serve_stale = "1h"
[[server]]
listen = ["127.0.0.1:$PORT"]
zones = ["static.example"]
[server.kubernetes]
zones = ["static.example"]
manifests = "static"
[[server]]
listen = ["127.0.0.1:$PORT"]
zones = ["flood.example"]
[server.forward]
to = ["127.0.0.1:$BLACKHOLE_PORT"]
timeout = "2s"
TOML
  mv "$WORK/clusterdns.toml.new" "$WORK/clusterdns.toml"
}
write_config 5
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

# The faults, each bounded in time and count.
if [ "$FAULTS" = 1 ]; then
  python3 "$FAULTS_PY" flood-names flood.example 64000 "$WORK/flood.txt"
  python3 "$FAULTS_PY" check "$PORT" "$DURATION" "$WORK/check.json" &
  PIDS+=($!)
  (
    sleep "$((DURATION / 10))"
    outage=$((DURATION / 5))
    curl -s -o /dev/null -X POST "$API/__control/fail" -d '{"status":500}'
    echo "fault: API outage for ${outage}s" >&2
    sleep "$((outage / 2))"
    write_config 7
    echo "fault: ttl edited during the outage" >&2
    sleep "$((outage - outage / 2))"
    curl -s -o /dev/null -X POST "$API/__control/recover"
    echo "fault: API back" >&2
  ) &
  PIDS+=($!)
  (
    sleep "$((DURATION * 4 / 10))"
    echo "fault: 16 TCP hogs for 60 s" >&2
    python3 "$FAULTS_PY" hogs "$PORT" 16 60 >&2
  ) &
  PIDS+=($!)
  (
    sleep "$((DURATION * 55 / 100))"
    echo "fault: random-name flood at a blackholed upstream, 8000 q/s for 8 s" >&2
    taskset -c "$CLIENT_CPUS" dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/flood.txt" -l 8 \
      -Q 8000 -q 64000 -c 4 -t 3 > "$WORK/flood.out" 2>&1 || true
  ) &
  PIDS+=($!)
  (
    sleep "$((DURATION * 7 / 10))"
    cp "$WORK/static/web.yaml" "$WORK/web.yaml.good"
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: prod\n  spec: [\n' > "$WORK/static/web.yaml"
    echo "fault: manifest syntax error for 30 s" >&2
    sleep 30
    cp "$WORK/web.yaml.good" "$WORK/static/web.yaml"
  ) &
  PIDS+=($!)
fi

echo "soak: ${DURATION}s at ${QPS} q/s, ${CHURN} API updates/s, upstream down ${FLAP_DOWN}s every ${FLAP_EVERY}s" >&2
taskset -c "$CLIENT_CPUS" dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" -l "$DURATION" \
  -Q "$QPS" -c 4 -t 2 -v > "$WORK/dnsperf.out" 2>&1 || true
sleep 2
wait_for_check=0
while [ "$FAULTS" = 1 ] && [ ! -s "$WORK/check.json" ] && [ $wait_for_check -lt 30 ]; do
  sleep 1; wait_for_check=$((wait_for_check + 1))
done
RSS_END="$(rss "$SERVER_PID")"
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
print(f"RSS change: {100 * (rss_end - rss_start) / rss_start:+.1f}%")
print(f"API updates {count('churn.count')}, upstream flaps {count('flaps.count')}")
check = os.path.join(work, "check.json")
if os.path.exists(check):
    import json
    c = json.load(open(check))
    print(f"cluster names checked: right {c['right']}, wrong {c['wrong']}, lost {c['lost']}")
    for e in c["examples"]:
        print(f"  {e}")
flood = os.path.join(work, "flood.out")
if os.path.exists(flood):
    for line in open(flood):
        if re.search(r"Queries (sent|completed|lost)|Response codes", line):
            print("flood: " + line.strip())
PY
