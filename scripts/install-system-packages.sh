#!/usr/bin/env bash
# The Debian packages bankguard runs with: Prometheus and Alertmanager (the monitoring
# stack `bankguard up` starts), and poppler with CJK data and a Chinese font (rendering
# and checking the backtest PDF, whose memos and keywords are often Chinese).
# Installs what is missing when this user may (root with apt-get); otherwise says so:
# `bankguard up` then runs without Prometheus, and the tests that need a part say what is missing.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

packages=()
have prometheus && have promtool || packages+=(prometheus)
{ have prometheus-alertmanager || have alertmanager; } && have amtool || packages+=(prometheus-alertmanager)
have pdftoppm || packages+=(poppler-utils)
have_package poppler-data || packages+=(poppler-data)
have_package fonts-wqy-microhei || packages+=(fonts-wqy-microhei)

if [ "${#packages[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
    echo "note: missing Debian packages: ${packages[*]}; as root: apt-get install ${packages[*]}" >&2
    exit 0
fi
echo "installing ${packages[*]} (Debian packages)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# Debian's packages start system services where an init runs; bankguard starts its own.
for service in prometheus prometheus-alertmanager prometheus-node-exporter; do
    if have systemctl && systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl stop "$service" || true
    fi
done
