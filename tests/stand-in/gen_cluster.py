#!/usr/bin/env python3
"""Seeded generator of a cluster for the fake API server, and of changes to replay on it.

    gen_cluster.py --seed N --out cluster.json [--changes changes.txt]

`--out` gets a `kind: List` of Namespaces, Services, EndpointSlices and Pods that
`fake_apiserver.py --fixture` loads. `--changes` gets the steps the differential test replays
through `/__control/apply` and `/__control/delete`, one operation per line:

    step NAME                 a new step: do what follows, wait, then compare
    apply {json}              POST the object (or List) to /__control/apply
    delete {json}             POST {"kind","namespace","name"} to /__control/delete
    wait QNAME A ADDRESS      poll until both servers answer QNAME A with ADDRESS

Every step ends with `wait`s on a marker applied last (a Namespace, a headless Service, its
EndpointSlice and a Pod): each kind's watch stream is ordered, so once a server answers the marker's
names it has seen every change made before it. The first step, `initial`, only waits for the
fixture's own marker.

The same seed gives the same bytes. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import string
import sys

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

NAMESPACE_POOL = ["shop", "data", "edge", "ops", "billing", "search", "media", "auth", "batch", "web"]
SERVICE_POOL = [
    "frontend", "cart", "checkout", "payments", "catalog", "api", "gateway", "worker", "queue",
    "cache", "redis", "postgres", "mysql", "kafka", "zookeeper", "search", "indexer", "auth",
    "session", "users", "orders", "inventory", "metrics", "logs", "tracing", "mailer", "assets",
    "thumbs", "cdn", "proxy", "ledger", "reports", "scheduler", "jobs", "notify",
]
PORTS = [
    ("http", 80, "TCP"), ("https", 443, "TCP"), ("grpc", 9000, "TCP"), ("metrics", 9090, "TCP"),
    ("dns", 53, "UDP"), ("syslog", 514, "UDP"), ("sctp-sig", 3868, "SCTP"), ("admin", 8081, "TCP"),
]


class Ids:
    """Allocates addresses that never repeat (unless asked to), deterministically."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.cluster_v4 = 0
        self.cluster_v6 = 0
        self.pod_v4 = 0
        self.pod_v6 = 0

    def cluster_ip4(self) -> str:
        self.cluster_v4 += 1
        return str(ipaddress.IPv4Address("10.96.0.0") + 16 + self.cluster_v4 * 3)

    def cluster_ip6(self) -> str:
        self.cluster_v6 += 1
        return str(ipaddress.IPv6Address("fd00:10:96::") + 0x100 + self.cluster_v6 * 5)

    def pod_ip4(self) -> str:
        self.pod_v4 += 1
        n = self.pod_v4
        return f"10.244.{n // 200}.{10 + n % 200}"

    def pod_ip6(self) -> str:
        self.pod_v6 += 1
        return str(ipaddress.IPv6Address("fd00:10:244::") + (self.pod_v6 << 16) + self.pod_v6)

    def suffix(self) -> str:
        return "".join(self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
            "status": {"phase": "Active"}}


def port(name, number, protocol) -> dict:
    p = {"port": number, "protocol": protocol}
    if name:
        p["name"] = name
    return p


def service(ns: str, name: str, *, cluster_ips=None, headless=False, external=None,
            ports=()) -> dict:
    spec: dict = {}
    if external is not None:
        spec = {"type": "ExternalName", "externalName": external}
    elif headless:
        spec = {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}
    else:
        families = ["IPv6" if ":" in ip else "IPv4" for ip in cluster_ips]
        spec = {"type": "ClusterIP", "clusterIP": cluster_ips[0], "clusterIPs": list(cluster_ips),
                "ipFamilies": families,
                "ipFamilyPolicy": "RequireDualStack" if len(families) > 1 else "SingleStack"}
    if ports:
        spec["ports"] = [dict(port(*p), targetPort=p[1]) for p in ports]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}}, "spec": spec}


# Endpoint conditions, as the EndpointSlice controller writes them.
READY = {"ready": True, "serving": True, "terminating": False}
UNSET = None  # conditions left out: ready is nil, which means ready
NOT_READY = {"ready": False, "serving": False, "terminating": False}
TERMINATING = {"ready": False, "serving": True, "terminating": True}
TERMINATING_GONE = {"ready": False, "serving": False, "terminating": True}


def endpoint(ip: str, conditions, *, hostname=None, pod=None, ns=None) -> dict:
    e: dict = {"addresses": [ip]}
    if conditions is not None:
        e["conditions"] = dict(conditions)
    if hostname:
        e["hostname"] = hostname
    if pod:
        e["targetRef"] = {"kind": "Pod", "name": pod, "namespace": ns}
        e["nodeName"] = "node-1"
    return e


def endpoint_slice(ns: str, service_name: str, name: str, family: str, endpoints, ports) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {SERVICE_NAME_LABEL: service_name,
                                    "endpointslice.kubernetes.io/managed-by":
                                        "endpointslice-controller.k8s.io"}},
            "addressType": family, "endpoints": endpoints,
            "ports": [port(*p) for p in ports]}


def pod(ns: str, name: str, ips, *, hostname=None, subdomain=None, terminating=False) -> dict:
    meta: dict = {"name": name, "namespace": ns}
    if terminating:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    spec: dict = {"containers": [{"name": "main", "image": "example/app"}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": "Running", "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips]}}


class Cluster:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.ids = Ids(self.rng)
        self.objects: list[dict] = []
        self.used_names: set[tuple[str, str]] = set()
        # (namespace, service) -> dict with what later changes need to know
        self.services: dict[tuple[str, str], dict] = {}

    # -- helpers --

    def add(self, *objs):
        self.objects.extend(objs)

    def service_name(self, ns: str, preferred: str | None = None) -> str:
        pool = [preferred] if preferred else []
        pool += self.rng.sample(SERVICE_POOL, len(SERVICE_POOL))
        for name in pool:
            if (ns, name) not in self.used_names:
                self.used_names.add((ns, name))
                return name
        n = 2
        while (ns, f"svc{n}") in self.used_names:
            n += 1
        self.used_names.add((ns, f"svc{n}"))
        return f"svc{n}"

    def pick_ports(self, k_min=1, k_max=3, *, unnamed_ok=False):
        ports = self.rng.sample(PORTS, self.rng.randint(k_min, k_max))
        if unnamed_ok and len(ports) == 1 and self.rng.random() < 0.5:
            name, number, protocol = ports[0]
            ports = [("", number, protocol)]
        return ports

    def conditions(self):
        return self.rng.choices([READY, UNSET, NOT_READY, TERMINATING, TERMINATING_GONE],
                                weights=[6, 2, 1, 1, 1])[0]

    def pods_and_endpoints(self, ns, base, count, *, family="IPv4", hostnames=False,
                           subdomain=None, force_ready=0):
        """`count` pods with endpoints; the first `force_ready` are ready."""
        eps, pods = [], []
        for i in range(count):
            pod_name = f"{base}-{i}" if hostnames else f"{base}-{self.ids.suffix()}"
            ip = self.ids.pod_ip6() if family == "IPv6" else self.ids.pod_ip4()
            cond = READY if i < force_ready else self.conditions()
            eps.append(endpoint(ip, cond, hostname=pod_name if hostnames else None,
                                pod=pod_name, ns=ns))
            pods.append(pod(ns, pod_name, [ip], hostname=pod_name if hostnames else None,
                            subdomain=subdomain, terminating=cond in (TERMINATING, TERMINATING_GONE)))
        return eps, pods

    def slices_for(self, ns, svc, family, endpoints, ports, pieces):
        """Splits `endpoints` over `pieces` slices (at least one endpoint each when possible)."""
        out = []
        pieces = max(1, min(pieces, len(endpoints))) if endpoints else 1
        for i in range(pieces):
            part = endpoints[i::pieces]
            out.append(endpoint_slice(ns, svc, f"{svc}-{self.ids.suffix()}", family, part, ports))
        return out

    def remember(self, ns, name, **info):
        self.services[(ns, name)] = info

    # -- templates: each adds one Service with what it needs --

    def cluster_ip(self, ns):
        name = self.service_name(ns)
        ports = self.pick_ports(unnamed_ok=True)
        # Now and then a StatefulSet behind a ClusterIP Service: endpoints with hostnames.
        eps, pods = self.pods_and_endpoints(ns, name, self.rng.randint(1, 5), force_ready=1,
                                            hostnames=self.rng.random() < 0.3, subdomain=name)
        slices = self.slices_for(ns, name, "IPv4", eps, [(p[0], p[1] + 8000, p[2]) for p in ports],
                                 self.rng.randint(1, 2))
        self.add(service(ns, name, cluster_ips=[self.ids.cluster_ip4()], ports=ports), *slices, *pods)
        self.remember(ns, name, kind="clusterip", slices=slices)

    def cluster_ip_unnamed(self, ns):
        name = self.service_name(ns)
        ports = [("", 8080, "TCP")]
        eps, pods = self.pods_and_endpoints(ns, name, 2, force_ready=2)
        slices = self.slices_for(ns, name, "IPv4", eps, ports, 1)
        self.add(service(ns, name, cluster_ips=[self.ids.cluster_ip4()], ports=ports), *slices, *pods)
        self.remember(ns, name, kind="clusterip", slices=slices)

    def dual_stack(self, ns):
        name = self.service_name(ns)
        ports = self.pick_ports()
        ips = [self.ids.cluster_ip4(), self.ids.cluster_ip6()]
        if self.rng.random() < 0.3:
            ips.reverse()  # IPv6 primary
        eps4, eps6, pods = [], [], []
        for i in range(self.rng.randint(1, 3)):
            pod_name = f"{name}-{self.ids.suffix()}"
            ip4, ip6 = self.ids.pod_ip4(), self.ids.pod_ip6()
            cond = READY if i == 0 else self.conditions()
            eps4.append(endpoint(ip4, cond, pod=pod_name, ns=ns))
            eps6.append(endpoint(ip6, cond, pod=pod_name, ns=ns))
            pods.append(pod(ns, pod_name, [ip4, ip6]))
        slices = [endpoint_slice(ns, name, f"{name}-{self.ids.suffix()}", "IPv4", eps4, ports),
                  endpoint_slice(ns, name, f"{name}-{self.ids.suffix()}", "IPv6", eps6, ports)]
        self.add(service(ns, name, cluster_ips=ips, ports=ports), *slices, *pods)
        self.remember(ns, name, kind="clusterip", slices=slices)

    def ipv6_only(self, ns):
        name = self.service_name(ns)
        ports = self.pick_ports(1, 2)
        eps, pods = self.pods_and_endpoints(ns, name, self.rng.randint(1, 3), family="IPv6",
                                            force_ready=1)
        slices = self.slices_for(ns, name, "IPv6", eps, ports, 1)
        self.add(service(ns, name, cluster_ips=[self.ids.cluster_ip6()], ports=ports), *slices, *pods)
        self.remember(ns, name, kind="clusterip", slices=slices)

    def headless_named(self, ns):
        """A StatefulSet's governing Service: hostnames, several slices, some not ready."""
        name = self.service_name(ns)
        ports = self.pick_ports(1, 2)
        count = self.rng.randint(2, 5)
        eps, pods = self.pods_and_endpoints(ns, name, count, hostnames=True, subdomain=name,
                                            force_ready=1)
        slices = self.slices_for(ns, name, "IPv4", eps, ports, self.rng.randint(1, 3))
        self.add(service(ns, name, headless=True, ports=ports), *slices, *pods)
        self.remember(ns, name, kind="headless", slices=slices, hostnames=True, next=count)

    def headless_dashed(self, ns):
        """No hostnames: endpoints are named by dashed address; IPv4 and IPv6 slices."""
        name = self.service_name(ns)
        ports = self.pick_ports(1, 2)
        eps, pods = self.pods_and_endpoints(ns, name, self.rng.randint(1, 4), force_ready=1)
        slices = self.slices_for(ns, name, "IPv4", eps, ports, self.rng.randint(1, 2))
        if self.rng.random() < 0.6:
            eps6, pods6 = self.pods_and_endpoints(ns, name, self.rng.randint(1, 2), family="IPv6")
            slices += self.slices_for(ns, name, "IPv6", eps6, ports, 1)
            pods += pods6
        self.add(service(ns, name, headless=True, ports=ports), *slices, *pods)
        self.remember(ns, name, kind="headless", slices=slices, hostnames=False)

    def headless_portless(self, ns):
        name = self.service_name(ns)
        eps, pods = self.pods_and_endpoints(ns, name, 2, hostnames=True, subdomain=name,
                                            force_ready=2)
        slices = self.slices_for(ns, name, "IPv4", eps, [], 1)
        self.add(service(ns, name, headless=True), *slices, *pods)
        self.remember(ns, name, kind="headless", slices=slices, hostnames=True, next=2)

    def headless_not_ready(self, ns):
        """Every endpoint not ready or terminating: the name does not exist."""
        name = self.service_name(ns)
        ports = self.pick_ports(1, 1)
        eps = [endpoint(self.ids.pod_ip4(), c, pod=f"{name}-{i}", ns=ns)
               for i, c in enumerate([NOT_READY, TERMINATING])]
        slices = self.slices_for(ns, name, "IPv4", eps, ports, 1)
        self.add(service(ns, name, headless=True, ports=ports), *slices)
        self.remember(ns, name, kind="headless", slices=slices, hostnames=False)

    def headless_empty(self, ns):
        name = self.service_name(ns)
        self.add(service(ns, name, headless=True, ports=self.pick_ports(1, 1)))
        self.remember(ns, name, kind="headless", slices=[], hostnames=False)

    def cluster_ip_without_endpoints(self, ns):
        name = self.service_name(ns)
        ports = self.pick_ports()
        self.add(service(ns, name, cluster_ips=[self.ids.cluster_ip4()], ports=ports))
        self.remember(ns, name, kind="clusterip", slices=[])

    def sctp(self, ns):
        name = self.service_name(ns)
        ports = [("sctp-sig", 3868, "SCTP"), ("diameter", 3869, "TCP")]
        eps, pods = self.pods_and_endpoints(ns, name, 2, force_ready=2)
        slices = self.slices_for(ns, name, "IPv4", eps, ports, 1)
        self.add(service(ns, name, cluster_ips=[self.ids.cluster_ip4()], ports=ports), *slices, *pods)
        self.remember(ns, name, kind="clusterip", slices=slices)

    def shared_ip(self, ns):
        """Two Services (one headless, one ClusterIP) selecting the same pods: same IPs."""
        a = self.service_name(ns)
        b = self.service_name(ns)
        ports = self.pick_ports(1, 2)
        eps, pods = self.pods_and_endpoints(ns, a, self.rng.randint(2, 3), hostnames=True,
                                            subdomain=a, force_ready=2)
        slices_a = self.slices_for(ns, a, "IPv4", eps, ports, 1)
        plain = [{k: v for k, v in e.items() if k != "hostname"} for e in eps]
        slices_b = self.slices_for(ns, b, "IPv4", plain, ports, 1)
        self.add(service(ns, a, headless=True, ports=ports), *slices_a,
                 service(ns, b, cluster_ips=[self.ids.cluster_ip4()], ports=ports), *slices_b,
                 *pods)
        self.remember(ns, a, kind="headless", slices=slices_a, hostnames=True, next=len(eps))
        self.remember(ns, b, kind="clusterip", slices=slices_b)

    def headless_big(self, ns):
        """Many endpoints over three slices: about 80 SRV records for the bare name, so the
        weight 100/N rounds down to its minimum of 1; a long answer (more than 4096 bytes)."""
        name = self.service_name(ns)
        ports = [("http", 80, "TCP"), ("grpc", 9000, "TCP")]
        eps, pods = self.pods_and_endpoints(ns, name, 46, hostnames=True, subdomain=name,
                                            force_ready=40)
        slices = self.slices_for(ns, name, "IPv4", eps, ports, 3)
        self.add(service(ns, name, headless=True, ports=ports), *slices, *pods)
        self.remember(ns, name, kind="headless", slices=slices, hostnames=True, next=46)

    def headless_duplicates(self, ns):
        """What a rollout leaves behind: a hostname on two addresses (old and new pod), and
        one address listed in two slices of the same Service."""
        name = self.service_name(ns)
        ports = [("peer", 7000, "TCP"), ("client", 7001, "TCP")]
        old_ip, new_ip, shared = self.ids.pod_ip4(), self.ids.pod_ip4(), self.ids.pod_ip4()
        first = [endpoint(old_ip, READY, hostname=f"{name}-0", pod=f"{name}-0", ns=ns),
                 endpoint(shared, READY, hostname=f"{name}-1", pod=f"{name}-1", ns=ns)]
        second = [endpoint(new_ip, READY, hostname=f"{name}-0", pod=f"{name}-0", ns=ns),
                  endpoint(shared, READY, hostname=f"{name}-1", pod=f"{name}-1", ns=ns)]
        slices = [endpoint_slice(ns, name, f"{name}-{self.ids.suffix()}", "IPv4", first, ports),
                  endpoint_slice(ns, name, f"{name}-{self.ids.suffix()}", "IPv4", second, ports)]
        self.add(service(ns, name, headless=True, ports=ports), *slices)
        self.remember(ns, name, kind="headless", slices=slices, hostnames=True)

    def multi_address(self, ns):
        """An endpoint with two addresses (the API allows up to 100), and `conditions: {}`."""
        name = self.service_name(ns)
        ports = self.pick_ports(1, 1)
        eps = [endpoint(self.ids.pod_ip4(), READY, pod=f"{name}-a", ns=ns),
               endpoint(self.ids.pod_ip4(), {}, pod=f"{name}-b", ns=ns)]
        eps[0]["addresses"].append(self.ids.pod_ip4())
        # A pod name too long for a DNS label (endpoint_pod_names falls back to the address).
        long_pod = f"{name}-" + "x" * 60 + "-0"
        eps.append(endpoint(self.ids.pod_ip4(), READY, pod=long_pod, ns=ns))
        slices = self.slices_for(ns, name, "IPv4", eps, ports, 1)
        self.add(service(ns, name, headless=True, ports=ports), *slices)
        self.remember(ns, name, kind="headless", slices=slices, hostnames=False)

    def cluster_ip_portless(self, ns):
        name = self.service_name(ns)
        eps, pods = self.pods_and_endpoints(ns, name, 2, force_ready=2)
        slices = self.slices_for(ns, name, "IPv4", eps, [], 1)
        self.add(service(ns, name, cluster_ips=[self.ids.cluster_ip4()]), *slices, *pods)
        self.remember(ns, name, kind="clusterip", slices=slices)

    def load_balancer(self, ns):
        name = self.service_name(ns)
        ports = [("https", 443, "TCP")]
        eps, pods = self.pods_and_endpoints(ns, name, 2, force_ready=1)
        slices = self.slices_for(ns, name, "IPv4", eps, [("https", 8443, "TCP")], 1)
        svc = service(ns, name, cluster_ips=[self.ids.cluster_ip4()], ports=ports)
        svc["spec"]["type"] = "LoadBalancer"
        svc["spec"]["externalIPs"] = ["203.0.113.7"]
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.9"}]}}
        self.add(svc, *slices, *pods)
        self.remember(ns, name, kind="clusterip", slices=slices)

    def external(self, ns, target=None):
        name = self.service_name(ns)
        target = target or self.rng.choice(["www.example.com", "api.example.org", "db.example.net"])
        self.add(service(ns, name, external=target, ports=[("http", 80, "TCP")]))
        self.remember(ns, name, kind="external", target=target)
        return name

    # -- the whole cluster --

    def build(self):
        namespaces = ["default", "kube-system"] + sorted(self.rng.sample(NAMESPACE_POOL, 4))
        self.namespaces = namespaces
        self.add(*(namespace(ns) for ns in namespaces + ["quiet"]))  # "quiet" has no Service
        # kube-dns, as kubeadm makes it.
        eps, pods = self.pods_and_endpoints("kube-system", "coredns", 2, force_ready=2)
        dns_ports = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
        self.used_names.add(("kube-system", "kube-dns"))
        self.add(service("kube-system", "kube-dns", cluster_ips=["10.96.0.10"], ports=dns_ports),
                 *self.slices_for("kube-system", "kube-dns", "IPv4", eps, dns_ports, 1), *pods)
        self.add(service("default", "kubernetes", cluster_ips=["10.96.0.1"],
                         ports=[("https", 443, "TCP")]),
                 endpoint_slice("default", "kubernetes", "kubernetes", "IPv4",
                                [endpoint("192.168.0.10", READY)], [("https", 6443, "TCP")]))
        self.used_names.add(("default", "kubernetes"))

        templates = [self.cluster_ip, self.cluster_ip_unnamed, self.dual_stack, self.ipv6_only,
                     self.headless_named, self.headless_dashed, self.headless_portless,
                     self.headless_not_ready, self.headless_empty,
                     self.cluster_ip_without_endpoints, self.sctp, self.shared_ip,
                     self.headless_big, self.headless_duplicates, self.multi_address,
                     self.cluster_ip_portless, self.load_balancer]
        app_namespaces = namespaces[2:]
        # Every template at least once, then more at random.
        for template in templates:
            template(self.rng.choice(app_namespaces))
        weights = [5, 1, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1]
        for _ in range(14):
            self.rng.choices(templates, weights=weights)[0](self.rng.choice(app_namespaces))
        # ExternalNames: outside, at a cluster Service, at a name that does not exist, at
        # another ExternalName (chains, in and out of the cluster), and two that point at each
        # other.
        outside_ns = self.rng.choice(app_namespaces)
        outside = self.external(outside_ns)
        self.external(self.rng.choice(app_namespaces), f"{outside}.{outside_ns}.svc.cluster.local")
        loop_ns = self.rng.choice(app_namespaces)
        loop_a, loop_b = self.service_name(loop_ns), self.service_name(loop_ns)
        for a, b in [(loop_a, loop_b), (loop_b, loop_a)]:
            self.add(service(loop_ns, a, external=f"{b}.{loop_ns}.svc.cluster.local"))
            self.remember(loop_ns, a, kind="external", target=f"{b}.{loop_ns}.svc.cluster.local")
        targets = [(ns, n) for (ns, n), info in self.services.items()
                   if info["kind"] == "clusterip" and info["slices"]]
        ns, n = self.rng.choice(targets)
        inner = self.external(self.rng.choice(app_namespaces), f"{n}.{ns}.svc.cluster.local")
        hs = [(ns, n) for (ns, n), info in self.services.items()
              if info["kind"] == "headless" and info.get("hostnames") and info["slices"]]
        ns, n = self.rng.choice(hs)
        self.external(self.rng.choice(app_namespaces), f"{n}.{ns}.svc.cluster.local")
        self.external(self.rng.choice(app_namespaces), "missing.nowhere.svc.cluster.local")
        inner_ns = next(ns for (ns, name) in self.services if name == inner)
        self.external(self.rng.choice(app_namespaces), f"{inner}.{inner_ns}.svc.cluster.local")
        # A trailing dot (the API accepts it), an endpoint name, an IP literal (the API accepts
        # that too: it is a valid DNS-1123 subdomain).
        self.external(self.rng.choice(app_namespaces), "www.example.com.")
        ns, n = self.rng.choice(hs)
        host = self.services[(ns, n)]["slices"][0]["endpoints"][0]["hostname"]
        self.external(self.rng.choice(app_namespaces), f"{host}.{n}.{ns}.svc.cluster.local")
        self.external(self.rng.choice(app_namespaces), "192.0.2.10")
        # Pods that share an address: hostNetwork pods on a node's IP in two namespaces, and a
        # completed pod whose IP was handed to a new pod in another namespace.
        for ns, name in [("kube-system", "kube-proxy-node1"), ("default", "node-exporter-node1")]:
            p = pod(ns, name, ["192.168.0.21"])
            p["spec"]["hostNetwork"] = True
            self.add(p)
        reused = next(o for o in self.objects if o["kind"] == "Pod"
                      and ":" not in o["status"]["podIP"])
        done = pod("quiet", "job-x7k2p", [reused["status"]["podIP"]])
        done["status"]["phase"] = "Succeeded"
        self.add(done)
        # The headless Service that changes-1 deletes before its slices.
        ns = self.rng.choice(app_namespaces)
        self.used_names.add((ns, "orphan-late"))
        eps, pods = self.pods_and_endpoints(ns, "orphan-late", 3, hostnames=True,
                                            subdomain="orphan-late", force_ready=3)
        slices = self.slices_for(ns, "orphan-late", "IPv4", eps, [("http", 80, "TCP")], 1)
        self.add(service(ns, "orphan-late", headless=True, ports=[("http", 80, "TCP")]),
                 *slices, *pods)
        self.remember(ns, "orphan-late", kind="orphan", slices=slices)
        self.orphan = (ns, "orphan-late")
        # IPv6 endpoint addresses whose text ends in `::`: the dashed name would end in `-`.
        ns = self.rng.choice(app_namespaces)
        name = self.service_name(ns)
        eps = [endpoint(ip, READY, pod=f"{name}-{i}", ns=ns)
               for i, ip in enumerate(["fd00:10:244:ff::", "fd00:10:244:fe::1:0"])]
        slices = self.slices_for(ns, name, "IPv6", eps, [("http", 80, "TCP")], 1)
        self.add(service(ns, name, headless=True, ports=[("http", 80, "TCP")]), *slices)
        self.remember(ns, name, kind="headless", slices=slices, hostnames=False)
        # A namespace called `svc` and a Service called `pod`: names that look like structure.
        self.add(namespace("svc"))
        self.namespaces.append("svc")
        self.used_names.add(("svc", "pod"))
        eps, pods = self.pods_and_endpoints("svc", "pod", 1, force_ready=1)
        self.add(service("svc", "pod", cluster_ips=[self.ids.cluster_ip4()],
                         ports=[("http", 80, "TCP")]),
                 *self.slices_for("svc", "pod", "IPv4", eps, [("http", 80, "TCP")], 1), *pods)
        return self

    # -- changes --

    def changes(self):
        """Steps of operations that create, delete, scale and flip readiness."""
        rng = self.rng
        steps = []

        def pick(kind, cond=lambda info: True):
            keys = sorted(k for k, info in self.services.items() if info["kind"] == kind and cond(info))
            return rng.choice(keys) if keys else None

        # Step 1: create, delete, scale up and down, flip readiness, retarget.
        ops = []
        ns = rng.choice(self.namespaces[2:])
        name = self.service_name(ns, "fresh")
        ports = [("http", 80, "TCP"), ("dns", 53, "UDP")]
        eps, pods = self.pods_and_endpoints(ns, name, 2, force_ready=2)
        created = [service(ns, name, cluster_ips=[self.ids.cluster_ip4(), self.ids.cluster_ip6()],
                           ports=ports),
                   *self.slices_for(ns, name, "IPv4", eps, ports, 1), *pods]
        ops.append(("apply", {"kind": "List", "items": created}))
        newns = "rollout"
        self.used_names.add((newns, "canary"))
        eps, pods = self.pods_and_endpoints(newns, "canary", 3, hostnames=True, subdomain="canary",
                                            force_ready=2)
        canary_slices = self.slices_for(newns, "canary", "IPv4", eps, [("http", 8080, "TCP")], 2)
        ops.append(("apply", {"kind": "List", "items": [
            namespace(newns), service(newns, "canary", headless=True, ports=[("http", 8080, "TCP")]),
            *canary_slices, *pods]}))
        gone = pick("clusterip", lambda i: bool(i["slices"]))
        ops.append(("delete", {"kind": "Service", "namespace": gone[0], "name": gone[1]}))
        for s in self.services.pop(gone)["slices"]:
            ops.append(("delete", {"kind": "EndpointSlice", "namespace": gone[0],
                                   "name": s["metadata"]["name"]}))
        multi = pick("headless", lambda i: len(i["slices"]) > 1)
        if multi:
            s = self.services[multi]["slices"].pop()
            ops.append(("delete", {"kind": "EndpointSlice", "namespace": multi[0],
                                   "name": s["metadata"]["name"]}))
        # Scale a StatefulSet up by two and another Service down by one.
        up = pick("headless", lambda i: i.get("hostnames") and i["slices"] and "next" in i)
        if up:
            info = self.services[up]
            s = info["slices"][0]
            for _ in range(2):
                host = f"{up[1]}-{info['next']}"
                info["next"] += 1
                ip = self.ids.pod_ip4()
                s["endpoints"].append(endpoint(ip, READY, hostname=host, pod=host, ns=up[0]))
                ops.append(("apply", pod(up[0], host, [ip], hostname=host, subdomain=up[1])))
            ops.append(("apply", s))
        down = pick("clusterip", lambda i: any(len(s["endpoints"]) > 1 for s in i["slices"]))
        if down:
            s = next(s for s in self.services[down]["slices"] if len(s["endpoints"]) > 1)
            s["endpoints"].pop(0)
            ops.append(("apply", s))
        # Readiness flips: a ready endpoint starts terminating, a not-ready one becomes ready.
        flips = sorted({k for k, i in self.services.items() if i.get("slices")})
        rng.shuffle(flips)
        flipped = 0
        for key in flips:
            for s in self.services[key]["slices"]:
                for e in s["endpoints"]:
                    if flipped < 4:
                        e["conditions"] = dict(TERMINATING if e.get("conditions", READY)["ready"]
                                               else READY)
                        flipped += 1
                        ops.append(("apply", s))
                        break
                break
        ext = pick("external", lambda i: not i["target"].endswith("cluster.local"))
        if ext:
            svc = service(ext[0], ext[1], external="moved.example.com", ports=[("http", 80, "TCP")])
            self.services[ext]["target"] = "moved.example.com"
            ops.append(("apply", svc))
        grow = pick("clusterip", lambda i: bool(i["slices"]))
        if grow:
            svc = next(o for o in self.objects if o["kind"] == "Service"
                       and (o["metadata"]["namespace"], o["metadata"]["name"]) == grow)
            svc = json.loads(json.dumps(svc))
            svc["spec"]["ports"] = [dict(port("extra", 7000, "TCP"), targetPort=7000)] + \
                svc["spec"].get("ports", [])
            ops.append(("apply", svc))
        # Out of order, as the controllers and the garbage collector leave things for a while:
        # a headless Service deleted before its slices, and a slice created before its Service.
        # (Both are called orphan-*, so the allow-list can name them.)
        orphaned = self.orphan
        ops.append(("delete", {"kind": "Service", "namespace": orphaned[0], "name": orphaned[1]}))
        orphan_slices = self.services.pop(orphaned)["slices"]
        late_ns = rng.choice(self.namespaces[2:])
        self.used_names.add((late_ns, "orphan-early"))
        eps, pods = self.pods_and_endpoints(late_ns, "orphan-early", 2, hostnames=True,
                                            subdomain="orphan-early", force_ready=2)
        late_slices = self.slices_for(late_ns, "orphan-early", "IPv4", eps,
                                      [("http", 80, "TCP")], 1)
        ops.append(("apply", {"kind": "List", "items": [*late_slices, *pods]}))
        steps.append(("changes-1", ops))

        # Step 2: tear the new namespace down again, empty a headless Service, re-create the
        # deleted Service at another address.
        ops = [("delete", {"kind": "Service", "namespace": newns, "name": "canary"})]
        for s in canary_slices:
            ops.append(("delete", {"kind": "EndpointSlice", "namespace": newns,
                                   "name": s["metadata"]["name"]}))
        ops.append(("delete", {"kind": "Namespace", "name": newns}))
        empty = pick("headless", lambda i: bool(i["slices"]))
        for s in self.services[empty]["slices"]:
            ops.append(("delete", {"kind": "EndpointSlice", "namespace": empty[0],
                                   "name": s["metadata"]["name"]}))
        self.services[empty]["slices"] = []
        eps, pods = self.pods_and_endpoints(gone[0], gone[1], 1, force_ready=1)
        ops.append(("apply", {"kind": "List", "items": [
            service(gone[0], gone[1], cluster_ips=[self.ids.cluster_ip4()], ports=[("http", 80, "TCP")]),
            *self.slices_for(gone[0], gone[1], "IPv4", eps, [("http", 8080, "TCP")], 1), *pods]}))
        for s in orphan_slices:
            ops.append(("delete", {"kind": "EndpointSlice", "namespace": orphaned[0],
                                   "name": s["metadata"]["name"]}))
        ops.append(("apply", service(late_ns, "orphan-early", headless=True,
                                     ports=[("http", 80, "TCP")])))
        # A ClusterIP Service turned into an ExternalName (its slices not yet removed).
        turned = pick("clusterip", lambda i: bool(i["slices"]))
        ops.append(("apply", service(turned[0], turned[1], external="turned.example.com",
                                     ports=[("http", 80, "TCP")])))
        steps.append(("changes-2", ops))
        return steps


def marker(step: int) -> tuple[list[dict], list[str]]:
    """Objects that show a server has caught up, and the `wait` lines that poll for them: the
    headless Service's address needs the Service and slice watches, the pod name needs the
    Namespace watch (and the Pod watch with `pods verified`)."""
    ns = f"zz-sync-{step}"
    ip = f"10.255.{step}.1"
    objs = [namespace(ns), service(ns, "marker", headless=True),
            endpoint_slice(ns, "marker", "marker-1", "IPv4", [endpoint(ip, READY)], []),
            pod(ns, "marker", [ip])]
    waits = [f"wait marker.{ns}.svc.cluster.local. A {ip}",
             f"wait 10-255-{step}-1.{ns}.pod.cluster.local. A {ip}"]
    return objs, waits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="the cluster, a kind: List (JSON)")
    parser.add_argument("--changes", help="the steps to replay (see the module docstring)")
    args = parser.parse_args(argv)

    cluster = Cluster(args.seed).build()
    objs, waits = marker(0)
    # Serialised before the changes are computed: they edit the objects in place.
    fixture = json.dumps({"apiVersion": "v1", "kind": "List", "items": cluster.objects + objs},
                         separators=(",", ":"))
    steps = cluster.changes()
    with open(args.out, "w") as f:
        f.write(fixture + "\n")
    if args.changes:
        with open(args.changes, "w") as f:
            f.write("step initial\n" + "".join(w + "\n" for w in waits))
            for i, (label, ops) in enumerate(steps, start=1):
                f.write(f"step {label}\n")
                for action, body in ops:
                    f.write(f"{action} {json.dumps(body, separators=(',', ':'))}\n")
                objs, waits = marker(i)
                f.write("apply " + json.dumps({"kind": "List", "items": objs},
                                              separators=(",", ":")) + "\n")
                f.write("".join(w + "\n" for w in waits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
