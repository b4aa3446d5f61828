#!/usr/bin/env bash
# The test command: installs what the tests use on a fresh machine, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the integration tests use: dig and nslookup (bind9-dnsutils), promtool
# (prometheus) to check /metrics, python3 for the fake Kubernetes API server, musl-gcc
# (musl-tools) and ip (iproute2) for the real-resolver tests in a network namespace, and
# CoreDNS 1.11 (from npm, into the gitignored node_modules/) for the differential test;
# unbound and openssl for the DNS-over-TLS upstream test, ca-certificates for the system roots,
# kdig (knot-dnsutils) as the DNS-over-TLS client of the served-TLS test.
COREDNS_PACKAGE=coredns-dist-linux-x64@1.11.1-3
COREDNS=node_modules/coredns-dist-linux-x64/coredns
missing=()
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ] || missing+=(unbound)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v kdig >/dev/null 2>&1 || missing+=(knot-dnsutils)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ! -x "$COREDNS" ] && ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} ..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # RUNLEVEL=1 keeps the prometheus and unbound packages from starting their own servers.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  $SUDO pkill -x prometheus 2>/dev/null || true
  $SUDO pkill -x unbound 2>/dev/null || true
fi
if [ ! -x "$COREDNS" ]; then
  echo "installing $COREDNS_PACKAGE ..."
  # --prefix: into this repository's node_modules/, whatever a parent directory holds.
  npm install --prefix "$PWD" --no-save --no-audit --no-fund "$COREDNS_PACKAGE" >/dev/null
fi

cargo test --locked --all-targets
