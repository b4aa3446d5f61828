#!/usr/bin/env python3
"""A cluster of a given size for the benchmark, and the dnsperf query files that go with it.

    gen_bench_cluster.py --services 5000 --pods 50000 --out cluster.json --queries-dir DIR
                         [--seed 8] [--queries 20000] [--headless 0.3]

`--out` gets a `kind: List` for `tests/stand-in/fake_apiserver.py --fixture`:

- Namespaces (about 25 Services each, at least 3) plus `default` and `kube-system` with the
  `kubernetes` and `kube-dns` Services;
- Services, a share of them headless (`--headless`, 0.3) and a third of those StatefulSet-like
  (endpoints with hostnames); the rest ClusterIP, IPv4 only, all with named ports;
- the Pods spread over the Services unevenly (log-normal weights, capped at 4x the mean), in
  EndpointSlices of at most 100 endpoints as the EndpointSlice controller writes them (3% of
  endpoints not ready), and one Pod object per endpoint (Running, podIP, nodeName; about 30
  Pods per node). Pods matter only for `pods verified`: `pods insecure` servers do not watch them.

`--queries-dir` gets the dnsperf input files (`NAME TYPE` per line):

- `queries-cluster.txt`, names drawn from the cluster: ClusterIP A (30%), headless A (15%),
  SRV (10%, ClusterIP and headless), PTR (10%, ClusterIPs and ready endpoint addresses), pod A
  (5%, `a-b-c-d.<ns>.pod`, live pods so `pods verified` answers them too), NXDOMAIN (20%: a
  missing Service in a namespace that exists, a namespace that does not) and AAAA of an
  IPv4-only Service (10%, NODATA);
- `queries-search.txt`, lookups as a pod with `ndots:5` and the search path
  `<ns>.svc.cluster.local svc.cluster.local cluster.local` sends them, A and AAAA each, in order:
  a short name in the pod's namespace (35%: one pair, answered), `svc.otherns` (25%: one NXDOMAIN
  pair, then the answer), `svc.ns.svc.cluster.local` without the final dot (20%: three NXDOMAIN
  pairs, then the answer) and an external name such as `www.example.org` (20%: three NXDOMAIN
  pairs, then the forwarded, cached answer from benches/dnsperf/example.org.zone). About 60% of
  the queries are NXDOMAIN.

Prints one summary line on stderr. The same arguments give the same bytes. Python 3.11 standard
library only; 100k Pods take a few seconds.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import random
import sys
import time

ZONE = "cluster.local"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MAX_PER_SLICE = 100
PODS_PER_NODE = 30

WORDS = [
    "frontend", "cart", "checkout", "payments", "catalog", "api", "gateway", "worker", "queue",
    "cache", "redis", "postgres", "mysql", "kafka", "zookeeper", "search", "indexer", "auth",
    "session", "users", "orders", "inventory", "metrics", "logs", "tracing", "mailer", "assets",
    "thumbs", "cdn", "proxy", "ledger", "reports", "scheduler", "jobs", "notify",
]
TEAMS = ["shop", "data", "edge", "ops", "billing", "search", "media", "auth", "batch", "web",
         "ml", "infra", "mobile", "growth", "risk", "ads"]
PORT_SETS = [
    [("http", 80, "TCP")],
    [("http", 80, "TCP"), ("metrics", 9090, "TCP")],
    [("grpc", 9000, "TCP")],
    [("https", 443, "TCP"), ("http", 80, "TCP")],
    [("redis", 6379, "TCP")],
    [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")],
]
# External names of benches/dnsperf/example.org.zone that exist (searched for like a pod does).
EXTERNAL = ["www.example.org", "api.example.org", "cdn.example.org", "mail.example.org"] + [
    f"host{i}.example.org" for i in range(1, 41)
]

READY = {"ready": True, "serving": True, "terminating": False}
NOT_READY = {"ready": False, "serving": False, "terminating": False}


def suffix(rng: random.Random, n: int = 5) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def build(services: int, pods: int, headless_share: float, seed: int):
    rng = random.Random(seed)
    items: list[dict] = []
    n_ns = max(3, round(services / 25))
    namespaces = []
    for i in range(n_ns):
        namespaces.append(f"{TEAMS[i % len(TEAMS)]}-{i // len(TEAMS) + 1}" if n_ns > len(TEAMS)
                          else TEAMS[i])
    for ns in ["default", "kube-system"] + namespaces:
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                      "status": {"phase": "Active"}})

    # Fixed Services every cluster has.
    items.append({"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "kubernetes", "namespace": "default",
                               "labels": {"component": "apiserver", "provider": "kubernetes"}},
                  "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                           "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                           "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                      "targetPort": 6443}]}})
    items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": "kubernetes", "namespace": "default",
                               "labels": {SERVICE_NAME_LABEL: "kubernetes"}},
                  "addressType": "IPv4",
                  "endpoints": [{"addresses": ["192.168.0.2"], "conditions": dict(READY)}],
                  "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]})
    items.append({"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "kube-dns", "namespace": "kube-system",
                               "labels": {"k8s-app": "kube-dns"}},
                  "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                           "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                           "selector": {"k8s-app": "kube-dns"},
                           "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                     {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                                     {"name": "metrics", "port": 9153, "protocol": "TCP",
                                      "targetPort": 9153}]}})

    # Services: names unique per namespace, spread round-robin over the namespaces.
    svcs = []  # dicts: ns, name, headless, sts, ip, ports, endpoints (filled below)
    per_ns_count: dict[str, int] = {}
    for i in range(services):
        ns = namespaces[i % n_ns]
        k = per_ns_count.get(ns, 0)
        per_ns_count[ns] = k + 1
        word = WORDS[k % len(WORDS)]
        name = word if k < len(WORDS) else f"{word}-{k // len(WORDS) + 1}"
        headless = rng.random() < headless_share
        svcs.append({
            "ns": ns, "name": name, "headless": headless,
            "sts": headless and rng.random() < 1 / 3,
            # ClusterIPs from 10.96.0.0/12, after the fixed ones.
            "ip": None if headless else str(ipaddress.IPv4Address("10.96.0.0") + 256 + i),
            "ports": rng.choice(PORT_SETS),
            "endpoints": [],  # (ip, pod name, ready, node)
        })

    # Pods per Service: log-normal weights capped at 4x the mean, at least one pod each when
    # there are enough pods.
    weights = [min(math.exp(rng.gauss(0, 0.8)), 4 * math.exp(0.32)) for _ in svcs]
    total_w = sum(weights)
    counts = [int(pods * w / total_w) for w in weights]
    if pods >= services:
        counts = [max(1, c) for c in counts]
    # Hand out (or take back) the rounding difference one pod at a time.
    diff = pods - sum(counts)
    order = list(range(len(svcs)))
    rng.shuffle(order)
    j = 0
    guard = 0
    while diff != 0 and order and guard < 10 * (abs(diff) + len(order)):
        guard += 1
        idx = order[j % len(order)]
        if diff > 0:
            counts[idx] += 1
            diff -= 1
        elif counts[idx] > 1:
            counts[idx] -= 1
            diff += 1
        j += 1

    base_pod = int(ipaddress.IPv4Address("10.128.0.0"))  # pod CIDR 10.128.0.0/9
    pod_n = 0
    n_nodes = max(1, math.ceil(pods / PODS_PER_NODE))
    pod_objects = []
    for svc, count in zip(svcs, counts):
        rs = suffix(rng, 9) if not svc["sts"] else None
        for k in range(count):
            # Skip .0 and .255 in every /24.
            ip = str(ipaddress.IPv4Address(base_pod + 256 * (pod_n // 254) + 1 + pod_n % 254))
            pod_n += 1
            node = rng.randrange(n_nodes)
            pod_name = f"{svc['name']}-{k}" if svc["sts"] else f"{svc['name']}-{rs}-{suffix(rng)}"
            ready = rng.random() >= 0.03
            svc["endpoints"].append((ip, pod_name, ready, node))
            labels = {"app": svc["name"]}
            spec = {"nodeName": f"node-{node}",
                    "containers": [{"name": svc["name"], "image": f"registry.example/{svc['name']}:1.0",
                                    "ports": [{"containerPort": p[1], "protocol": p[2], "name": p[0]}
                                              for p in svc["ports"]]}]}
            if svc["sts"]:
                spec["hostname"] = pod_name
                spec["subdomain"] = svc["name"]
            pod_objects.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": svc["ns"], "labels": labels},
                "spec": spec,
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                           "hostIP": f"192.168.{node // 250}.{node % 250 + 2}",
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
            })

    for svc in svcs:
        spec = {"type": "ClusterIP", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "selector": {"app": svc["name"]},
                "ports": [{"name": n, "port": p, "protocol": proto, "targetPort": p}
                          for n, p, proto in svc["ports"]]}
        if svc["headless"]:
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
        else:
            spec["clusterIP"] = svc["ip"]
            spec["clusterIPs"] = [svc["ip"]]
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": svc["name"], "namespace": svc["ns"],
                                   "labels": {"app": svc["name"]}},
                      "spec": spec})
        eps = svc["endpoints"]
        for start in range(0, max(len(eps), 1), MAX_PER_SLICE):
            chunk = eps[start:start + MAX_PER_SLICE]
            endpoints = []
            for ip, pod_name, ready, node in chunk:
                e = {"addresses": [ip], "conditions": dict(READY if ready else NOT_READY),
                     "nodeName": f"node-{node}",
                     "targetRef": {"kind": "Pod", "name": pod_name, "namespace": svc["ns"]}}
                if svc["sts"]:
                    e["hostname"] = pod_name
                endpoints.append(e)
            items.append({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": f"{svc['name']}-{suffix(rng)}", "namespace": svc["ns"],
                             "labels": {SERVICE_NAME_LABEL: svc["name"],
                                        "endpointslice.kubernetes.io/managed-by":
                                            "endpointslice-controller.k8s.io"}},
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in svc["ports"]],
            })
    items.extend(pod_objects)
    return items, namespaces, svcs


def fqdn(*labels: str) -> str:
    return ".".join(labels) + "."


def cluster_queries(rng: random.Random, n: int, namespaces, svcs) -> list[str]:
    clusterip = [s for s in svcs if not s["headless"]]
    headless = [s for s in svcs if s["headless"] and any(e[2] for e in s["endpoints"])]
    ready_eps = [(s, e) for s in svcs for e in s["endpoints"] if e[2]]
    all_eps = [(s, e) for s in svcs for e in s["endpoints"]]
    existing = {(s["ns"], s["name"]) for s in svcs}

    def svc_name(s):
        return fqdn(s["name"], s["ns"], "svc", ZONE)

    def srv(s):
        name, _, proto = rng.choice(s["ports"])
        return f"{fqdn('_' + name, '_' + proto.lower(), s['name'], s['ns'], 'svc', ZONE)} SRV"

    def pick(pool, fallback):
        return rng.choice(pool) if pool else fallback

    kinds = ["clusterip_a", "headless_a", "srv", "ptr", "pod_a", "nxdomain", "aaaa_nodata"]
    weights = [30, 15, 10, 10, 5, 20, 10]
    out = []
    for kind in rng.choices(kinds, weights=weights, k=n):
        if kind == "headless_a" and not headless:
            kind = "clusterip_a"
        if kind in ("clusterip_a", "aaaa_nodata", "ptr") and not clusterip:
            kind = "nxdomain"
        if kind == "pod_a" and not all_eps:
            kind = "nxdomain"
        if kind == "clusterip_a":
            out.append(f"{svc_name(rng.choice(clusterip))} A")
        elif kind == "aaaa_nodata":
            out.append(f"{svc_name(rng.choice(clusterip))} AAAA")
        elif kind == "headless_a":
            out.append(f"{svc_name(rng.choice(headless))} A")
        elif kind == "srv":
            pool = headless if (rng.random() < 0.5 and headless) else (clusterip or headless)
            out.append(srv(rng.choice(pool)))
        elif kind == "ptr":
            if rng.random() < 0.5 or not ready_eps:
                ip = rng.choice(clusterip)["ip"]
            else:
                ip = rng.choice(ready_eps)[1][0]
            out.append(f"{reverse_name(ip)}. PTR")
        elif kind == "pod_a":
            s, e = rng.choice(all_eps)
            out.append(f"{fqdn(e[0].replace('.', '-'), s['ns'], 'pod', ZONE)} A")
        else:  # nxdomain
            if rng.random() < 0.7:
                ns = rng.choice(namespaces)
                while True:
                    name = f"{rng.choice(WORDS)}-{suffix(rng, 4)}"
                    if (ns, name) not in existing:
                        break
                out.append(f"{fqdn(name, ns, 'svc', ZONE)} A")
            else:
                s = pick(svcs, {"name": "api"})
                out.append(f"{fqdn(s['name'], 'nope-' + suffix(rng, 4), 'svc', ZONE)} A")
    return out


def search_queries(rng: random.Random, n: int, namespaces, svcs) -> list[str]:
    """Lookups as a pod with ndots:5 sends them, whole lookups until about n queries."""
    out = []
    by_ns: dict[str, list] = {}
    for s in svcs:
        by_ns.setdefault(s["ns"], []).append(s)
    client_namespaces = [ns for ns in namespaces if ns in by_ns] or ["default"]
    search = lambda ns: [f"{ns}.svc.{ZONE}", f"svc.{ZONE}", ZONE]  # noqa: E731

    def pair(name):
        out.append(f"{name}. A")
        out.append(f"{name}. AAAA")

    guard = 0
    while len(out) < n and guard < 10 * n:
        guard += 1
        client = rng.choice(client_namespaces)
        kind = rng.choices(["short", "svc_ns", "fqdn_no_dot", "external"], weights=[35, 25, 20, 20])[0]
        if kind == "short":
            s = rng.choice(by_ns.get(client) or svcs or [{"name": "kubernetes", "ns": "default"}])
            pair(f"{s['name']}.{search(client)[0]}")
        elif kind == "svc_ns":
            s = rng.choice(svcs) if svcs else {"name": "kubernetes", "ns": "default"}
            short = f"{s['name']}.{s['ns']}"
            pair(f"{short}.{search(client)[0]}")  # NXDOMAIN (or, in its own namespace, too)
            pair(f"{short}.{search(client)[1]}")  # answered
        elif kind == "fqdn_no_dot":
            s = rng.choice(svcs) if svcs else {"name": "kubernetes", "ns": "default"}
            full = f"{s['name']}.{s['ns']}.svc.{ZONE}"
            for domain in search(client):
                pair(f"{full}.{domain}")
            pair(full)
        else:
            name = rng.choice(EXTERNAL)
            for domain in search(client):
                pair(f"{name}.{domain}")
            pair(name)  # forwarded; answered from the cache once warm
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, required=True)
    parser.add_argument("--pods", type=int, required=True)
    parser.add_argument("--out", required=True, help="the kind: List fixture to write")
    parser.add_argument("--queries-dir", help="where to write queries-cluster.txt and queries-search.txt")
    parser.add_argument("--queries", type=int, default=20000, help="queries per file [20000]")
    parser.add_argument("--headless", type=float, default=0.3, help="share of headless Services [0.3]")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)
    if args.services < 1 or args.pods < 0:
        parser.error("--services must be at least 1 and --pods at least 0")

    t0 = time.monotonic()
    items, namespaces, svcs = build(args.services, args.pods, args.headless, args.seed)
    with open(args.out, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, separators=(",", ":"))
        f.write("\n")
    if args.queries_dir:
        os.makedirs(args.queries_dir, exist_ok=True)
        rng = random.Random(args.seed * 7919 + 1)
        for fname, lines in (
            ("queries-cluster.txt", cluster_queries(rng, args.queries, namespaces, svcs)),
            ("queries-search.txt", search_queries(rng, args.queries, namespaces, svcs)),
        ):
            with open(os.path.join(args.queries_dir, fname), "w") as f:
                f.write("\n".join(lines) + "\n")
    kinds: dict[str, int] = {}
    for o in items:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    print(f"gen_bench_cluster: {args.out}: " + ", ".join(f"{v} {k}" for k, v in kinds.items())
          + f" ({sum(1 for s in svcs if s['headless'])} headless), "
          f"{os.path.getsize(args.out) / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
