#!/usr/bin/env python3
"""The query set of the differential test, derived from a generated cluster and its changes.

    gen_queries.py --seed N --cluster cluster.json [--changes changes.txt] --out queries.txt

Replays the changes over the cluster and collects the names of every state, so the same set
asks for what exists before, between and after the changes. Writes one `NAME TYPE` per line
(names absolute, with the trailing dot, case as it should be sent).

What is asked: every name (services, `_port._proto` names, per-endpoint names, pod names,
reverse names of every address) for A, AAAA, SRV, PTR, CNAME, TXT, NS, SOA, ANY and MX; the
apexes and structural names; near misses (wrong namespace, wrong port label, wrong protocol,
extra labels, truncated names, unknown addresses, malformed pod and reverse names); the search
expansions a pod with `ndots:5` really sends; a share of every kind in mixed case.

The same seed and inputs give the same bytes. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import random
import sys

ZONE = "cluster.local"
TYPES = ["A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "NS", "SOA", "ANY", "MX"]
# Names that are only near misses are asked for fewer types (still every existence path).
NEAR_TYPES = ["A", "AAAA", "SRV", "TXT", "ANY"]


def key(obj):
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", "") if obj["kind"] != "Namespace" else "", meta["name"])


def states(cluster: dict, changes_path: str | None):
    """Yields the object store after the fixture and after each step of the changes."""
    store = {}
    for obj in cluster["items"]:
        obj = copy.deepcopy(obj)
        if obj["kind"] != "Namespace":
            obj["metadata"].setdefault("namespace", "default")
        store[key(obj)] = obj
    yield dict(store)
    if not changes_path:
        return
    with open(changes_path) as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    dirty = False
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "step" and dirty:
            yield dict(store)
            dirty = False
        elif word == "apply":
            dirty = True
            body = json.loads(rest)
            items = body["items"] if body.get("kind") == "List" else [body]
            for obj in items:
                obj = copy.deepcopy(obj)
                if obj["kind"] != "Namespace":
                    obj["metadata"].setdefault("namespace", "default")
                store[key(obj)] = obj
        elif word == "delete":
            dirty = True
            body = json.loads(rest)
            ns = body.get("namespace", "") if body["kind"] != "Namespace" else ""
            store.pop((body["kind"], ns, body["name"]), None)
    if dirty:
        yield dict(store)


def dashed(ip: str) -> str:
    text = str(ipaddress.ip_address(ip)).replace(".", "-").replace(":", "-")
    return text + "0" if text.endswith("-") else text


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


class Queries:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.out: list[tuple[str, str]] = []
        self.seen: set[tuple[str, str]] = set()

    def add(self, name: str, types=TYPES, *, mixed_share=0.15):
        name = name if name.endswith(".") else name + "."
        if len(name) > 254 or any(len(label) > 63 for label in name.split(".")):
            return  # not a name the wire can carry
        for t in types:
            if (name.lower(), t) in self.seen:
                continue
            self.seen.add((name.lower(), t))
            sent = self.mixed(name) if self.rng.random() < mixed_share else name
            self.out.append((sent, t))

    def mixed(self, name: str) -> str:
        return "".join(c.upper() if c.isalpha() and self.rng.random() < 0.5 else c for c in name)

    def near(self, name: str):
        self.add(name, NEAR_TYPES)


def collect(store: dict, q: Queries, rng: random.Random):
    namespaces = sorted(n for (k, _, n) in store if k == "Namespace")
    services = sorted((ns, n) for (k, ns, n) in store if k == "Service")
    slices_of: dict[tuple[str, str], list[dict]] = {}
    for (k, ns, _), obj in sorted(store.items()):
        if k == "EndpointSlice":
            svc = obj["metadata"].get("labels", {}).get("kubernetes.io/service-name")
            if svc:
                slices_of.setdefault((ns, svc), []).append(obj)
    other_ns = namespaces + ["nosuchns"]
    addresses: set[str] = set()

    for ns in namespaces + ["nosuchns"]:
        q.add(f"{ns}.svc.{ZONE}")
        q.add(f"{ns}.pod.{ZONE}")
        q.near(f"x.{ns}.svc.{ZONE}")

    for ns, name in services:
        svc = store[("Service", ns, name)]
        spec = svc["spec"]
        base = f"{name}.{ns}.svc.{ZONE}"
        q.add(base)
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if ip and ip != "None":
                addresses.add(ip)
        # Near misses on the service name.
        wrong_ns = rng.choice([n for n in other_ns if n != ns])
        q.near(f"{name}.{wrong_ns}.svc.{ZONE}")
        q.near(f"{name}.{ns}.pod.{ZONE}")
        q.near(f"{name}x.{ns}.svc.{ZONE}")
        q.near(f"{name}.{ns}.svc")  # truncated: not in any zone
        q.near(f"{name}.{ns}.{ZONE}")  # the `svc` label left out
        # Ports of the Service and of its slices.
        ports = {(p.get("name", ""), p.get("protocol", "TCP")) for p in spec.get("ports", [])}
        slices = slices_of.get((ns, name), [])
        for s in slices:
            ports |= {(p.get("name", ""), p.get("protocol", "TCP")) for p in s.get("ports") or []}
        for pname, proto in sorted(ports):
            if pname:
                q.add(f"_{pname}._{proto.lower()}.{base}")
                other = "udp" if proto != "UDP" else "tcp"
                q.near(f"_{pname}._{other}.{base}")  # wrong protocol
        if ("http", "TCP") not in ports:
            q.near(f"_http._tcp.{base}")  # a port the service does not have
        if rng.random() < 0.3 and ports:
            pname, proto = sorted(ports)[0]
            q.near(f"{pname or 'x'}.{proto.lower()}.{base}")  # without underscores
            q.near(f"_{pname or 'x'}.{base}")  # protocol left out
        q.near(f"a.b.c.{base}")  # too many labels
        # Endpoints: per-endpoint names, pod names, addresses.
        for s in slices:
            for e in s.get("endpoints") or []:
                for ip in e.get("addresses", []):
                    addresses.add(ip)
                    label = e.get("hostname") or dashed(ip)
                    q.add(f"{label}.{base}")
                    if e.get("hostname"):
                        q.near(f"{dashed(ip)}.{base}")  # a hostname hides the dashed name
                    elif label.endswith("--0"):  # what CoreDNS 1.11 calls it
                        q.near(f"{label[:-1]}.{base}")
                    if e.get("targetRef", {}).get("name"):
                        q.add(f"{e['targetRef']['name']}.{base}")  # endpoint_pod_names
                    q.near(f"x.{label}.{base}")
                    q.near(f"_{rng.choice(['http', 'peer', 'dns'])}._tcp.{label}.{base}")
                    q.add(f"{dashed(ip)}.{ns}.pod.{ZONE}")
                    q.near(f"{dashed(ip)}.{rng.choice([n for n in other_ns if n != ns])}.pod.{ZONE}")
        if spec.get("type") == "ExternalName":
            target = spec["externalName"]
            q.near(f"x.{base}")
            q.near(f"_http._tcp.{base}")
            if target.endswith(ZONE):
                q.add(target)
        # What a pod in another namespace sends for this name with ndots:5.
        client_ns = rng.choice([n for n in namespaces if not n.startswith("zz-sync-")])
        search = [f"{client_ns}.svc.{ZONE}", f"svc.{ZONE}", ZONE]
        for typed in (name, f"{name}.{ns}", f"{name}.{ns}.svc", base):
            for suffix in search:
                q.near(f"{typed}.{suffix}")

    for (k, ns, name), pod in sorted(store.items()):
        if k != "Pod":
            continue
        for entry in pod.get("status", {}).get("podIPs") or []:
            ip = entry["ip"]
            addresses.add(ip)
            q.add(f"{dashed(ip)}.{ns}.pod.{ZONE}")
            if ":" in ip:  # the same address written out in full
                q.near(ipaddress.ip_address(ip).exploded.replace(":", "-") + f".{ns}.pod.{ZONE}")

    for ip in sorted(addresses):
        q.add(reverse_name(ip))
        q.near("x." + reverse_name(ip))
    return addresses


def fixed(q: Queries):
    """Apexes, structural names and names that are wrong whatever the cluster holds."""
    for name in [ZONE, f"svc.{ZONE}", f"pod.{ZONE}", f"dns-version.{ZONE}", f"ns.dns.{ZONE}",
                 f"dns.{ZONE}", "in-addr.arpa", "ip6.arpa", "10.in-addr.arpa",
                 "96.10.in-addr.arpa", "0.96.10.in-addr.arpa"]:
        q.add(name)
    for name in [f"x.{ZONE}", f"x.svc.{ZONE}", f"x.dns-version.{ZONE}", f"x.ns.dns.{ZONE}",
                 f"local", "example.com", f"www.example.com.svc.{ZONE}",
                 f"www.example.com.default.svc.{ZONE}", f"www.example.com.{ZONE}",
                 f"*.default.svc.{ZONE}", f"*.*.svc.{ZONE}", f"_https._tcp.*.default.svc.{ZONE}",
                 f"1-2-3-4.pod.{ZONE}", f"1-2-3.default.pod.{ZONE}", f"1-2-3-4-5.default.pod.{ZONE}",
                 f"256-1-1-1.default.pod.{ZONE}", f"010-1-2-3.default.pod.{ZONE}",
                 f"x.1-2-3-4.default.pod.{ZONE}", f"1-2-3-4.nosuchns.pod.{ZONE}",
                 f"fd00--1.default.pod.{ZONE}", f"fd00-0-0-0-0-0-0-1.default.pod.{ZONE}",
                 f"::1.default.pod.{ZONE}", f"a.b.c.d.default.pod.{ZONE}",
                 "1.1.1.1.10.in-addr.arpa", "300.1.96.10.in-addr.arpa", "01.0.96.10.in-addr.arpa",
                 "x.0.96.10.in-addr.arpa", "1.0.0.0.ip6.arpa",
                 "0.1.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"]:
        q.add(name)
    for ip in ["10.96.0.2", "10.96.255.254", "10.244.250.250", "192.168.0.11", "8.8.8.8",
               "fd00:10:96::1", "fd00:10:244::ffff", "2001:db8::1"]:
        q.add(reverse_name(ip))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--changes")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with open(args.cluster) as f:
        cluster = json.load(f)
    q = Queries(args.seed)
    rng = random.Random(args.seed + 1)
    fixed(q)
    for store in states(cluster, args.changes):
        collect(store, q, rng)
    with open(args.out, "w") as f:
        for name, qtype in q.out:
            f.write(f"{name} {qtype}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
