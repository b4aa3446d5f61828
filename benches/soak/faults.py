#!/usr/bin/env python3
"""Fault injectors and the answer checker for benches/soak/soak.sh (standard library only).

  faults.py check PORT SECONDS OUT      every 50 ms ask the cluster names below and count
                                        right, wrong and lost answers; write a summary to OUT
  faults.py hogs PORT COUNT SECONDS     COUNT TCP clients from 127.0.0.2 that pipeline queries
                                        and never read, held open SECONDS
  faults.py flood-names ZONE COUNT OUT  COUNT unique random names under ZONE, a dnsperf file
  faults.py blackhole PORT SECONDS      a UDP socket that never reads, for SECONDS
"""
import json
import random
import socket
import struct
import sys
import time

# name, type, expected rcode, expected addresses (sorted); the cluster names the soak guards.
CHECKS = [
    ("frontend.shop.svc.cluster.local", 1, 0, ["10.96.10.10"]),
    ("postgres.data.svc.cluster.local", 1, 0, None),  # headless: addresses churn-free, any set
    ("nosuch.shop.svc.cluster.local", 1, 3, []),
    ("web.prod.svc.static.example", 1, 0, ["10.201.0.5"]),
    ("api.prod.svc.static.example", 1, 0, ["10.201.0.6"]),
]


def query(name, qtype, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def skip_name(m, i):
    while True:
        n = m[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def answers(m):
    """(rcode, sorted A/AAAA addresses in the answer section)."""
    rcode = m[3] & 0x0F
    qd, an = struct.unpack(">HH", m[4:8])
    i = 12
    for _ in range(qd):
        i = skip_name(m, i) + 4
    out = []
    for _ in range(an):
        i = skip_name(m, i)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", m[i : i + 10])
        i += 10
        if rtype == 1:
            out.append(socket.inet_ntop(socket.AF_INET, m[i : i + 4]))
        i += rdlen
    return rcode, sorted(out)


def check(port, seconds, out):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    right = wrong = lost = 0
    wrong_examples = []
    end = time.time() + seconds
    qid = 0
    while time.time() < end:
        for name, qtype, want_rcode, want in CHECKS:
            qid = (qid + 1) & 0xFFFF
            sock.sendto(query(name, qtype, qid), ("127.0.0.1", port))
            try:
                while True:
                    m, _ = sock.recvfrom(65535)
                    if struct.unpack(">H", m[:2])[0] == qid:
                        break
            except socket.timeout:
                lost += 1
                continue
            rcode, got = answers(m)
            if rcode == want_rcode and (want is None or got == want) and (want_rcode or got):
                right += 1
            else:
                wrong += 1
                if len(wrong_examples) < 10:
                    wrong_examples.append(f"{time.strftime('%T')} {name}: rcode {rcode} {got}")
        time.sleep(0.05)
    with open(out, "w") as f:
        json.dump({"right": right, "wrong": wrong, "lost": lost, "examples": wrong_examples}, f)


def hogs(port, count, seconds):
    q = query("postgres.data.svc.cluster.local", 33, 7)
    framed = struct.pack(">H", len(q)) + q
    batch = framed * 500
    conns = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.2", 0))
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            continue
        s.settimeout(0.5)
        for _ in range(40):  # bounded: 20,000 queries a connection
            try:
                s.sendall(batch)
            except (socket.timeout, OSError):
                break
        conns.append(s)
    time.sleep(seconds)
    for s in conns:
        s.close()
    print(f"hogs: {len(conns)} connections held {seconds}s")


def flood_names(zone, count, out):
    with open(out, "w") as f:
        for _ in range(count):
            f.write(f"{random.getrandbits(48):012x}.{zone} A\n")


def blackhole(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    time.sleep(seconds)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "check":
        check(int(args[0]), float(args[1]), args[2])
    elif cmd == "hogs":
        hogs(int(args[0]), int(args[1]), float(args[2]))
    elif cmd == "flood-names":
        flood_names(args[0], int(args[1]), args[2])
    elif cmd == "blackhole":
        blackhole(int(args[0]), float(args[1]))
    else:
        sys.exit(f"unknown command {cmd}")
