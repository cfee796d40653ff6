#!/usr/bin/env bash
# Prometheus and Alertmanager come from Debian's packages. Installs them when missing
# and this user may (root with apt-get); otherwise says so: `bankguard up` then runs
# without them, and the tests that need them tell what is missing.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have prometheus && have promtool && { have prometheus-alertmanager || have alertmanager; } && have amtool; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
    echo "note: Prometheus/Alertmanager not installed; as root: apt-get install prometheus prometheus-alertmanager" >&2
    exit 0
fi
echo "installing prometheus and prometheus-alertmanager (Debian packages)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
# Debian's packages start system services where an init runs; bankguard starts its own.
for service in prometheus prometheus-alertmanager prometheus-node-exporter; do
    if have systemctl && systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl stop "$service" || true
    fi
done
