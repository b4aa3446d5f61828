#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/<target>/ (file names start with `seed-`).

Run from anywhere: `python3 fuzz/seeds.py`. Re-running rewrites the same files. The input
formats are described at the top of fuzz/src/lib.rs.
"""

import ipaddress
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

A, NS, CNAME, SOA, PTR, HINFO, TXT, AAAA, SRV, OPT, AXFR, ANY = (
    1, 2, 5, 6, 12, 13, 16, 28, 33, 41, 252, 255)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def wire_name(name):
    out = b""
    for label in name.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def opt(size=1232, version=0, do=False, ext_rcode=0):
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return b"\0" + struct.pack(">HHIH", OPT, size, ttl, 0)


def header(id_, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", id_, flags, qd, an, ns, ar)


def query(name, qtype, id_=0x1234, edns=1232, flags=0x0100, qclass=1, do=False, version=0):
    m = header(id_, flags, 1, 0, 0, 1 if edns else 0)
    m += wire_name(name) + struct.pack(">HH", qtype, qclass)
    if edns:
        m += opt(edns, version, do)
    return m


def rr(name_bytes, rtype, ttl, rdata, rclass=1):
    return name_bytes + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata)) + rdata


# ---- request_path: raw requests -------------------------------------------------------------

requests = {
    "a-clusterip": query("frontend.shop.svc.cluster.local", A),
    "aaaa-no-edns": query("frontend.shop.svc.cluster.local", AAAA, edns=None),
    "srv-headless": query("_postgres._tcp.postgres.data.svc.cluster.local", SRV),
    "srv-wide-512": query("_http._tcp.wide.data.svc.cluster.local", SRV, edns=None),
    "a-wide-tc": query("wide.data.svc.cluster.local", A, edns=None),
    "a-endpoint": query("postgres-0.postgres.data.svc.cluster.local", A),
    "ptr-v4": query("10.0.96.10.in-addr.arpa", PTR),
    "ptr-v6": query(ipaddress.ip_address("fd00:10:96::a").reverse_pointer, PTR),
    "cname-mixed-case": query("StoreFront.Shop.SVC.Cluster.Local", A),
    "cname-external": query("payments.shop.svc.cluster.local", A),
    "cname-loop": query("loop-a.shop.svc.cluster.local", A, do=True),
    "soa-apex": query("cluster.local", SOA),
    "ns-apex": query("cluster.local", NS, edns=None),
    "txt-dns-version": query("dns-version.cluster.local", TXT),
    "a-ns-dns": query("ns.dns.cluster.local", A),
    "a-pod": query("10-244-1-10.shop.pod.cluster.local", A),
    "any": query("cache.data.svc.cluster.local", ANY),
    "nxdomain": query("nope.shop.svc.cluster.local", A),
    "refused-outside": query("example.com", A),
    "axfr": query("cluster.local", AXFR),
    "chaos": query("version.bind", TXT, qclass=3),
    "hinfo": query("probe.example.org", HINFO),
    "notify": query("cluster.local", SOA, flags=0x2000),
    "badvers": query("frontend.shop.svc.cluster.local", A, version=1),
    "root": query("", NS),
    "no-question": header(0x4242, 0x0100, 0),
    "two-questions": header(0x4343, 0x0100, 2) + wire_name("a.cluster.local") + struct.pack(">HH", A, 1)
    + wire_name("b.cluster.local") + struct.pack(">HH", A, 1),
    "compressed-question": header(0x4444, 0x0100, 2) + wire_name("svc.cluster.local") + struct.pack(">HH", A, 1)
    + b"\x04shop\xc0\x0c" + struct.pack(">HH", A, 1),
    "short": b"\x12\x34\x01\x00\x00",
    "response": query("frontend.shop.svc.cluster.local", A, flags=0x8180),
    "edns-tiny": query("wide.data.svc.cluster.local", SRV, edns=100),
    "edns-huge": query("wide.data.svc.cluster.local", A, edns=65535),
}
for name, data in requests.items():
    write("request_path", name, data)

# ---- zone_name: qtype (2) | variant (1) | encoded name ------------------------------------

CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-._"
WORDS = {
    "cluster.local": 0, "svc": 1, "pod": 2, "in-addr.arpa": 3, "ip6.arpa": 4, "shop": 5,
    "data": 6, "kube-system": 7, "frontend": 10, "storefront": 14, "postgres": 16,
    "postgres-0": 17, "loop-a": 22, "wide": 27, "_http": 30, "_tcp": 31, "_postgres": 35,
    "dns-version": 36, "ns.dns": 37, "10-244-1-10": 38, "10.96.10": 41,
}


def zname(*parts):
    """Words by name; any other part is spelled in characters, joined with dots."""
    out = b""
    for i, p in enumerate(parts):
        if p in WORDS:
            out += bytes([0x80 + WORDS[p]])
        else:
            if i > 0:
                out += bytes([CHARS.index(".")])
            out += bytes(CHARS.index(c) for c in p)
    return out


def zseed(qtype, variant, *parts):
    return struct.pack(">HB", qtype, variant) + zname(*parts)


zone_names = {
    "a-service": zseed(A, 0, "frontend", "shop", "svc", "cluster.local"),
    "srv-port": zseed(SRV, 2, "_postgres", "_tcp", "postgres", "data", "svc", "cluster.local"),
    "a-endpoint-strict": zseed(A, 1 | 16, "postgres-0", "postgres", "data", "svc", "cluster.local"),
    "a-pod": zseed(A, 0, "10-244-1-10", "shop", "pod", "cluster.local"),
    "ptr": zseed(PTR, 8, "10", "10.96.10", "in-addr.arpa"),
    "cname-loop": zseed(A, 4, "loop-a", "shop", "svc", "cluster.local"),
    "txt-version": zseed(TXT, 0, "dns-version", "cluster.local"),
    "ns-apex-strict": zseed(NS, 1 | 24, "cluster.local"),
    "wide-tcp": zseed(SRV, 8, "_http", "_tcp", "wide", "data", "svc", "cluster.local"),
    "any-storefront": zseed(ANY, 6, "storefront", "shop", "svc", "cluster.local"),
    "chars-only": zseed(A, 0, "frontend.shop.svc.cluster.local"),
    "empty-label": zseed(A, 0, "a..b", "svc", "cluster.local"),
}
for name, data in zone_names.items():
    write("zone_name", name, data)

# ---- config: config files -------------------------------------------------------------------

with open(os.path.join(ROOT, "config", "clusterdns.toml")) as f:
    write("config", "demo.toml", f.read())
write("config", "full.toml", """
[admin]
health = "127.0.0.1:8080"
ready = "127.0.0.1:8181"
metrics = "[::1]:9153"
lameduck = "5s"
reload_interval = 0

[[server]]
listen = [":53", "[::1]:5353"]
zones = ["."]
loadbalance = true
log = true

[server.kubernetes]
zones = ["cluster.local", "10.0.0.0/17", "fd00::/120"]
endpoint = "http://127.0.0.1:8001"
pods = "verified"
ttl = 3600
fallthrough = ["."]
namespaces = ["default", "kube-system"]
labels = "environment!=staging,tier in (a,b)"
ignore_empty_service = true
endpoint_pod_names = true
startup_timeout_secs = 0

[server.forward]
to = ["8.8.8.8", "1.1.1.1:53", "[2001:db8::1]:5353"]
policy = "sequential"
health_check = "500ms"
max_fails = 0
expire = "1m"
force_tcp = true
max_concurrent = 1000
except = ["internal.example"]
timeout = "30s"

[server.cache]
capacity = 1
min_ttl = 0
max_ttl = 86400
negative_max_ttl = 0
servfail_ttl = 300
prefetch = 10
serve_stale = "1h"

[[server]]
listen = [":53"]
zones = ["example.org", "corp"]

[server.forward]
to = ["10.0.0.1"]
policy = "round_robin"
prefer_udp = true
""")
write("config", "kubeconfig.toml", """
[[server]]
zones = ["cluster.local"]
[server.kubernetes]
kubeconfig = "~/.kube/config"
context = "kind-kind"
zones = ["cluster.local", "0.0.0.0/0", "::/0"]
""")
write("config", "errors.toml", """
[[server]]
listen = ["127.0.0.1:99999"]
zones = ["Cluster.Local.", "cluster.local"]
[server.kubernetes]
ttl = 7200
pods = "sometimes"
""")
write("config", "empty.toml", "")

# ---- manifests: manifest files ----------------------------------------------------------------

demo = os.path.join(ROOT, "config", "demo-cluster")
for f in sorted(os.listdir(demo)):
    with open(os.path.join(demo, f)) as fh:
        write("manifests", f, fh.read())
write("manifests", "list.json", """{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}},
 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "ns1"},
  "spec": {"clusterIP": "None", "ports": [{"name": "p", "port": 1, "protocol": "UDP"}]}},
 {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "s-1", "namespace": "ns1", "labels": {"kubernetes.io/service-name": "s"}},
  "addressType": "IPv6", "endpoints": [{"addresses": ["::1"], "hostname": "h"}],
  "ports": [{"name": "p", "port": 1, "protocol": "UDP"}]},
 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns1"},
  "status": {"podIP": "::1"}}]}
""")
write("manifests", "externalname.yaml", """apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: "Some.Where.EXAMPLE."}
---
apiVersion: v1
kind: Service
metadata: {name: self, namespace: default}
spec: {type: ExternalName, externalName: self.default.svc.cluster.local}
""")
write("manifests", "broken.yaml", """apiVersion: v1
kind: Service
metadata: {name: bad, namespace: default}
spec: {clusterIP: 300.1.1.1, ports: [{port: 70000}]}
---
kind: [unclosed
""")

# ---- upstream_reply: control (2) | reply ------------------------------------------------------

def reply(qname, qtype, rcode=0, answers=(), authority=(), additional=(), flags=0x8180, id_=0x9999):
    m = header(id_, flags | rcode, 1, len(answers), len(authority), len(additional))
    m += wire_name(qname) + struct.pack(">HH", qtype, 1)
    for r in list(answers) + list(authority) + list(additional):
        m += r
    return m


PTR_Q = b"\xc0\x0c"  # a pointer to the question name
soa_rdata = wire_name("ns.example.com") + wire_name("hostmaster.example.com") + struct.pack(">IIIII", 1, 7200, 1800, 86400, 60)
replies = {
    "a": (0x00, 0x00, reply("www.example.com", A, answers=[rr(PTR_Q, A, 300, bytes([192, 0, 2, 1]))])),
    "a-edns-do": (0x0d | 0x10, 0x55, reply("www.example.com", A, answers=[rr(PTR_Q, A, 300, bytes([192, 0, 2, 1]))],
                                          additional=[opt(4096, do=True)])),
    "nxdomain-soa": (0x05, 0x00, reply("nope.example.com", A, rcode=3,
                                       authority=[rr(wire_name("example.com"), SOA, 900, soa_rdata)])),
    "cname-chain": (0x01, 0xff, reply("alias.example.com", A, answers=[
        rr(PTR_Q, CNAME, 60, wire_name("target.example.com")),
        rr(wire_name("target.example.com"), A, 60, bytes([198, 51, 100, 7]))])),
    "big-truncated": (0x04 | (6 << 5), 0x0f, reply("many.example.com", A,
                                                  answers=[rr(PTR_Q, A, 30, bytes([10, 0, i // 256, i % 256])) for i in range(40)],
                                                  additional=[rr(PTR_Q, AAAA, 30, bytes(16)) for _ in range(10)] + [opt()])),
    "tc-bit": (0x00, 0x00, reply("www.example.com", A, flags=0x8380)),
    "servfail": (0x03, 0x00, reply("www.example.com", AAAA, rcode=2)),
    "opt-not-last": (0x04, 0x00, reply("www.example.com", A, additional=[opt(), rr(PTR_Q, A, 1, bytes(4))])),
    "extended-rcode": (0x04, 0x00, reply("www.example.com", A, additional=[opt(ext_rcode=1)])),
    "query-not-reply": (0x00, 0x00, reply("www.example.com", A, flags=0x0100)),
    "short": (0x00, 0x00, b"\x99\x99\x81\x80\x00\x01"),
}
for name, (c0, c1, data) in replies.items():
    write("upstream_reply", name, bytes([c0, c1]) + data)
