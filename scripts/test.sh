#!/usr/bin/env bash
# The test command: installs what the tests use on a fresh machine, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# dig (bind9-dnsutils) is one of the real clients the integration tests query with.
if ! command -v dig >/dev/null 2>&1; then
  echo "installing bind9-dnsutils (dig) ..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bind9-dnsutils >/dev/null
fi

cargo test --locked --all-targets
