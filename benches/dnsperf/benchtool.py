#!/usr/bin/env python3
"""Helpers of benches/dnsperf/compare.sh (Python 3.11 standard library only).

    benchtool.py wait-ready --url URL --start-ns NS --pid PID --timeout S
        Polls URL every 10 ms until it answers 200; prints the milliseconds since NS
        (`date +%s%N` taken just before the server was started). Exit 1 on timeout or when
        PID has exited.
    benchtool.py latency FILE
        Reads `dnsperf -v` output; prints "p50_ms p99_ms p99.9_ms completed lost": percentiles
        over every query sent, a lost query (`T`) counting as slower than any answer (a
        percentile that falls on one prints "lost"). Interrupted queries (`I`, in flight when
        the time limit hit) are not counted.
    benchtool.py knot-zones --out DIR FILE...
        Zone files for Knot from dig's text output (an AXFR, answer sections): every record
        in the zone it belongs to (cluster.local, in-addr.arpa, ip6.arpa), each once.
    benchtool.py summarize --runs RUNS.tsv --meta META.tsv --out RESULTS.md
        Medians over the rounds, ratios clusterdns/CoreDNS (median of the per-round ratios),
        the markdown tables; printed and written to RESULTS.md.

RUNS.tsv lines: size, round, server, mix ("-" for per-start figures), metric, value.
META.tsv lines: size ("-" for the whole run), key, value.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import urllib.error
import urllib.request

SERVERS = ("clusterdns", "coredns")
MIX_TITLES = {
    "cluster": "cluster names",
    "search": "ndots:5 search expansions",
    "external": "external names (cache hits)",
    "misses": "external names (cache misses)",
}
PEER_TITLES = {
    "knot": ("Knot DNS", "knot_version", "an authoritative server (one UDP worker) serving the same "
             "cluster as static zones (clusterdns's AXFR of cluster.local plus its answers to every "
             "question of the mix: PTRs, pod names), same questions, same rounds"),
    "unbound": ("unbound", "unbound_version", "a forwarding cache (one thread, iterator module only, "
                "no validation) in front of the same upstream, same questions, same rounds"),
}


# --- wait-ready ----------------------------------------------------------------------------------


def wait_ready(url: str, start_ns: int, pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=1) as r:
                if r.status == 200:
                    print(f"{(time.time_ns() - start_ns) / 1e6:.0f}")
                    return 0
        except (urllib.error.URLError, ConnectionError, OSError, TimeoutError):
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"benchtool: pid {pid} exited before {url} answered 200", file=sys.stderr)
            return 1
        time.sleep(0.01)
    print(f"benchtool: {url} did not answer 200 within {timeout:.0f} s", file=sys.stderr)
    return 1


# --- latency -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency(path: str) -> int:
    values: list[float] = []
    lost = 0
    with open(path, errors="replace") as f:
        for line in f:
            if not line.startswith("> "):
                continue
            parts = line.split()
            if len(parts) < 2:
                continue
            if parts[1] == "T":
                lost += 1
            elif parts[1] == "I":
                continue
            else:
                try:
                    values.append(float(parts[-1]) * 1000)
                except ValueError:
                    continue
    completed = len(values)
    values.sort()
    values.extend([math.inf] * lost)
    out = []
    for p in (50, 99, 99.9):
        v = percentile(values, p)
        out.append("lost" if v == math.inf else ("nan" if math.isnan(v) else f"{v:.3f}"))
    print(" ".join(out + [str(completed), str(lost)]))
    return 0


# --- knot-zones ----------------------------------------------------------------------------------


def knot_zones(out_dir: str, inputs: list[str]) -> int:
    """Zone files for Knot from dig's text (an AXFR, then answer sections): every record in the
    zone it belongs to (cluster.local, in-addr.arpa, ip6.arpa), each once."""
    zones = {"cluster.local.": {}, "in-addr.arpa.": {}, "ip6.arpa.": {}}
    for path in inputs:
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.split(None, 4)
                if line.startswith(";") or len(parts) < 5 or parts[2].upper() != "IN":
                    continue
                owner, ttl, _, rtype, rdata = parts
                owner = owner.lower()
                for zone, records in zones.items():
                    if owner == zone or owner.endswith("." + zone):
                        key = (owner, rtype.upper(), rdata.strip().lower())
                        records.setdefault(key, f"{owner} {ttl} IN {rtype.upper()} {rdata.strip()}")
    if not any(rtype == "SOA" for (_, rtype, _) in zones["cluster.local."]):
        print("benchtool: no SOA for cluster.local in the transfer", file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    for zone, records in zones.items():
        if zone != "cluster.local.":
            records[(zone, "SOA", "")] = (f"{zone} 30 IN SOA ns.dns.cluster.local. "
                                          "hostmaster.cluster.local. 1 7200 1800 86400 30")
            records[(zone, "NS", "")] = f"{zone} 30 IN NS ns.dns.cluster.local."
        soa = [text for (o, t, _), text in records.items() if t == "SOA" and o == zone][:1]
        rest = [text for (o, t, _), text in sorted(records.items()) if t != "SOA"]
        with open(os.path.join(out_dir, zone.rstrip(".") + ".zone"), "w") as f:
            f.write("\n".join(soa + rest) + "\n")
        print(f"benchtool: {zone} {len(rest) + 1} records", file=sys.stderr)
    return 0


# --- summarize -----------------------------------------------------------------------------------


def num(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def summarize(runs_path: str, meta_path: str, out_path: str) -> int:
    runs: dict[tuple, dict[int, str]] = {}  # (size, server, mix, metric) -> round -> value
    with open(runs_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 6:
                continue
            size, rnd, server, mix, metric, value = parts
            runs.setdefault((size, server, mix, metric), {})[int(rnd)] = value
    meta: dict[str, dict[str, str]] = {}
    with open(meta_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) == 3:
                meta.setdefault(parts[0], {})[parts[1]] = parts[2]
    g = meta.get("-", {})
    sizes = g.get("sizes", "").split()
    mixes = g.get("mixes", "").split()

    def values(size, server, mix, metric) -> dict[int, float]:
        got = runs.get((size, server, mix, metric), {})
        return {r: v for r, text in got.items() if (v := num(text)) is not None}

    def med(size, server, mix, metric):
        v = list(values(size, server, mix, metric).values())
        return statistics.median(v) if v else None

    def ratio(size, mix, metric):
        a, b = values(size, "clusterdns", mix, metric), values(size, "coredns", mix, metric)
        per_round = [a[r] / b[r] for r in sorted(a) if r in b and b[r] > 0]
        return statistics.median(per_round) if per_round else None

    def fmt_num(v, kind):
        if v is None:
            return "–"
        if kind == "qps":
            if v >= 1000 and v % 1000 == 0:
                return f"{v / 1000:.0f}k"
            return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"
        if kind == "us":
            return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
        if kind == "ms":
            return f"{v:.2f}" if v >= 1 else f"{v:.3f}"
        if kind == "mib":
            return f"{v / 1024:.1f}"
        if kind == "s":
            return f"{v / 1000:.2f}"
        return f"{v:g}"

    def fmt_ratio(r, bold=False, times=False):
        if r is None:
            return "–"
        text = f"{r:.1f}×" if times else f"{r:.2f}"
        return f"**{text}**" if bold else text

    def pair(size, mix, metric, kind, bold=False, times=False):
        a, b = med(size, "clusterdns", mix, metric), med(size, "coredns", mix, metric)
        # A latency percentile that fell on a lost query in most rounds is shown as "lost".
        def show(server, v):
            raw = list(runs.get((size, server, mix, metric), {}).values())
            if raw and sum(1 for x in raw if x == "lost") * 2 > len(raw):
                return "lost"
            return fmt_num(v, kind)
        return f"{show('clusterdns', a)} / {show('coredns', b)} → {fmt_ratio(ratio(size, mix, metric), bold, times)}"

    def size_title(size):
        m = meta.get(size, {})
        return m.get("title", size)

    def peer_table(peer, mix):
        """One mix's table of clusterdns, CoreDNS and a peer (Knot, unbound), where the peer ran."""
        peer_sizes = [size for size in sizes if values(size, peer, mix, "cpu_us")]
        if not peer_sizes:
            return
        title, version_key, what = PEER_TITLES[peer]
        lines.append(f"## {MIX_TITLES.get(mix, mix).capitalize()}: clusterdns, CoreDNS and {title}")
        lines.append("")
        lines.append(f"{title} {g.get(version_key, '?')}: {what}.")
        lines.append("")
        lines.append(f"| cluster | metric | clusterdns | CoreDNS | {title} | clusterdns / CoreDNS | clusterdns / {title} |")
        lines.append("|---|---|---|---|---|---|---|")

        def peer_ratio(size, metric):
            a, b = values(size, "clusterdns", mix, metric), values(size, peer, mix, metric)
            per_round = [a[r] / b[r] for r in sorted(a) if r in b and b[r] > 0]
            return statistics.median(per_round) if per_round else None

        rows = [("CPU µs/query at saturation", "cpu_us", "us", True, False),
                ("queries/s at saturation", "qps", "qps", False, True),
                (f"p50 ms at {load} q/s", "p50", "ms", False, False),
                (f"p99 ms at {load} q/s", "p99", "ms", True, False),
                (f"p99.9 ms at {load} q/s", "p999", "ms", False, False),
                ("SERVFAIL at saturation", "servfail_sat", "x", False, False),
                (f"SERVFAIL at {load} q/s", "servfail_load", "x", False, False),
                ("lost at saturation", "lost_sat", "x", False, False)]
        if mix == "misses":
            rows.append(("cache misses, % of answered (saturation)", "miss_pct", "x", False, False))
        for size in peer_sizes:
            for label, metric, kind, bold, times in rows:
                cells = [fmt_num(med(size, server, mix, metric), kind) for server in ("clusterdns", "coredns", peer)]
                ratios = ["–", "–"] if kind == "x" else [fmt_ratio(ratio(size, mix, metric), bold, times),
                                                         fmt_ratio(peer_ratio(size, metric), bold, times)]
                lines.append(f"| {size_title(size)} | {label} | {' | '.join(cells)} | {' | '.join(ratios)} |")
        check = meta.get(peer_sizes[0], {}).get("check_knot") if peer == "knot" else None
        lines.append("")
        lines.append("Medians over the rounds; ratios are the medians of the per-round ratios."
                     + (f" Answers compared with dig, clusterdns and Knot: {check}." if check else ""))
        lines.append("")

    lines = []
    lines.append(f"# clusterdns vs CoreDNS {g.get('coredns_version', '1.11')}: dnsperf, side by side")
    lines.append("")
    lines.append(f"Measured {g.get('date', '?')} on {g.get('cpu', '?')}: servers on CPU {g.get('server_cpus', '0')}, "
                 f"dnsperf, the API stand-in and the upstream on CPU {g.get('client_cpus', '1')}. "
                 f"clusterdns {g.get('clusterdns_version', '?')}; {g.get('coredns_full', 'CoreDNS')}; dnsperf {g.get('dnsperf_version', '?')}.")
    lines.append("")
    lines.append(f"Command: `{g.get('command', 'benches/dnsperf/compare.sh')}`")
    lines.append("")
    lines.append(
        f"Both servers run kubeadm's default configuration (`deploy/coredns/Corefile.kubeadm`, "
        f"`deploy/kubernetes/configmap.yaml`) with the API stand-in as endpoint, loopback addresses, "
        f"`pods {g.get('pods', 'insecure')}` and the local example.org upstream as forward target. Every figure is the "
        f"median of {g.get('rounds', '?')} runs, each with a fresh server process (clusterdns and CoreDNS "
        f"alternating, ABBA); ratios are clusterdns / CoreDNS, the median of the per-run-pair ratios. "
        f"Saturation: `dnsperf -c {g.get('clients', '?')} -q {g.get('outstanding', '?')}` for {g.get('duration', '?')} s. "
        f"Latency: `dnsperf -Q {g.get('load_qps', '?')}` for {g.get('load_duration', '?')} s, percentiles over every "
        f"query (from `-v`; a lost query counts as slower than any answer). "
        f"CPU per query: user + system time of the server process (`/proc/PID/stat`) over the "
        f"queries completed in the saturation run. RSS after sync: VmRSS when `/ready` first answers "
        f"200; time to ready: from the process start to that answer (polled every 10 ms).")
    lines.append("")
    lines.append("The machine is shared and noisy: CPU per query is the figure to compare; queries/s "
                 "and latency swing with the load of other processes, and a fast server is limited by "
                 "dnsperf on one CPU (see \"server CPU busy\").")
    lines.append("")

    lines.append("## Per query mix")
    lines.append("")
    load = fmt_num(num(g.get('load_qps', '0')), 'qps')
    lines.append(f"| cluster | mix | CPU µs/query at saturation | CPU µs/query at {load} q/s | "
                 f"queries/s at saturation | p50 ms at {load} q/s | p99 ms | p99.9 ms | "
                 "server CPU busy at saturation (others on its CPU) | "
                 f"server waiting for its CPU at {load} q/s, ms/s |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        for mix in mixes:
            if not runs.get((size, "clusterdns", mix, "qps")) and not runs.get((size, "coredns", mix, "qps")):
                continue
            busy = []
            for server in SERVERS:
                b, o = med(size, server, mix, "cpu_pct"), med(size, server, mix, "others_pct")
                busy.append("–" if b is None else f"{b:.0f}%" + ("" if o is None else f" ({o:.0f}%)"))
            lines.append(
                f"| {size_title(size)} | {MIX_TITLES.get(mix, mix)} | "
                f"{pair(size, mix, 'cpu_us', 'us', bold=True)} | "
                f"{pair(size, mix, 'cpu_us_load', 'us')} | "
                f"{pair(size, mix, 'qps', 'qps', times=True)} | "
                f"{pair(size, mix, 'p50', 'ms')} | {pair(size, mix, 'p99', 'ms')} | "
                f"{pair(size, mix, 'p999', 'ms')} | {' / '.join(busy)} | "
                f"{fmt_num(med(size, 'clusterdns', mix, 'runq_load'), 'x')} / "
                f"{fmt_num(med(size, 'coredns', mix, 'runq_load'), 'x')} |")
    lines.append("")
    lines.append("Each cell: clusterdns / CoreDNS → ratio. \"Others on its CPU\": CPU time other "
                 "processes took on the server's CPU during the saturation run; \"waiting for its CPU\": "
                 "how long the server's threads were runnable but not running, per second of the "
                 "latency run (from /proc/PID/task/*/schedstat), behind other processes or behind "
                 "the server's own threads (CoreDNS's Go runtime and garbage collector share its one "
                 "CPU). Where these are not near 0 the latency tails measure the scheduler more than "
                 "the query path: a thread that wakes behind a busy one can wait a whole scheduler "
                 "slice (about 3–4 ms).")
    lines.append("")

    for peer, mix in (("knot", "cluster"), ("unbound", "external"), ("unbound", "misses")):
        peer_table(peer, mix)

    lines.append("## Start-up and memory")
    lines.append("")
    lines.append("| cluster | objects in the stand-in | time to /ready, s | RSS after sync, MiB | peak RSS after the load, MiB |")
    lines.append("|---|---|---|---|---|")
    for size in sizes:
        if not runs.get((size, "clusterdns", "-", "ready_ms")) and not runs.get((size, "coredns", "-", "ready_ms")):
            continue
        lines.append(
            f"| {size_title(size)} | {meta.get(size, {}).get('objects', '?')} | "
            f"{pair(size, '-', 'ready_ms', 's')} | {pair(size, '-', 'rss_kb', 'mib', bold=True)} | "
            f"{pair(size, '-', 'hwm_kb', 'mib')} |")
    lines.append("")

    lines.append("## The runs")
    lines.append("")
    lines.append("| cluster | fixture | stand-in: load, LIST services / endpointslices / pods | "
                 "load average (1 min) during the runs | CPU taken by other processes on the server's CPU | "
                 "answers compared with dig (differ) |")
    lines.append("|---|---|---|---|---|---|")
    for size in sizes:
        m = meta.get(size, {})
        loads = [v for server in SERVERS for mix in mixes
                 for v in values(size, server, mix, "loadavg").values()]
        others = [v for server in SERVERS for mix in mixes
                  for v in values(size, server, mix, "others_pct").values()]
        load_text = (f"median {statistics.median(loads):.2f} ({min(loads):.2f}–{max(loads):.2f})"
                     if loads else "–")
        others_text = (f"median {statistics.median(others):.0f}% (max {max(others):.0f}%)" if others else "–")
        checks = ", ".join(f"{mix} {m['check_' + mix]}" for mix in mixes if ("check_" + mix) in m) or "–"
        lines.append(
            f"| {size_title(size)} | {m.get('fixture', '?')} | {m.get('api_load_s', '?')} s; "
            f"{m.get('list_services_s', '?')} / {m.get('list_endpointslices_s', '?')} / {m.get('list_pods_s', '?')} s | "
            f"{load_text} | {others_text} | {checks} |")
    lines.append("")
    lines.append("Response codes in the saturation runs (clusterdns | CoreDNS), first run:")
    lines.append("")
    for size in sizes:
        for mix in mixes:
            a = runs.get((size, "clusterdns", mix, "rcodes"), {})
            b = runs.get((size, "coredns", mix, "rcodes"), {})
            if a or b:
                first = lambda d: d[min(d)] if d else "–"  # noqa: E731
                lines.append(f"- {size_title(size)}, {mix}: {first(a)} | {first(b)}")
    for note in g.get("notes", "").split("\x1f"):
        if note.strip():
            lines.append("")
            lines.append(note)
    lines.append("")

    lines.append("<details><summary>Every run</summary>")
    lines.append("")
    lines.append("| cluster | server | mix | metric | per run |")
    lines.append("|---|---|---|---|---|")
    for (size, server, mix, metric), by_round in sorted(runs.items(), key=lambda kv: (
            sizes.index(kv[0][0]) if kv[0][0] in sizes else 99, kv[0][2], kv[0][3], kv[0][1])):
        if metric == "rcodes":
            continue
        lines.append(f"| {size_title(size)} | {server} | {mix} | {metric} | "
                     f"{', '.join(by_round[r] for r in sorted(by_round))} |")
    lines.append("")
    lines.append("</details>")
    text = "\n".join(lines) + "\n"
    with open(out_path, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait-ready")
    w.add_argument("--url", required=True)
    w.add_argument("--start-ns", type=int, required=True)
    w.add_argument("--pid", type=int, required=True)
    w.add_argument("--timeout", type=float, default=300)
    lat = sub.add_parser("latency")
    lat.add_argument("file")
    k = sub.add_parser("knot-zones")
    k.add_argument("--out", required=True)
    k.add_argument("inputs", nargs="+")
    s = sub.add_parser("summarize")
    s.add_argument("--runs", required=True)
    s.add_argument("--meta", required=True)
    s.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "wait-ready":
        return wait_ready(args.url, args.start_ns, args.pid, args.timeout)
    if args.cmd == "latency":
        return latency(args.file)
    if args.cmd == "knot-zones":
        return knot_zones(args.out, args.inputs)
    return summarize(args.runs, args.meta, args.out)


if __name__ == "__main__":
    sys.exit(main())
