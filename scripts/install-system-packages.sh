#!/usr/bin/env bash
# Install the Debian packages the lab drives, skipping those already installed.
#
# keepalived, frr, haproxy, openvswitch-switch and ovn-central/ovn-host ship services that Debian's postinst starts at once on a systemd machine;
# the lab only ever runs them inside its own namespaces, so a temporary policy-rc.d keeps the
# install from starting anything in the root namespace, and the services are left disabled.
set -euo pipefail

packages=("$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || {
    echo "vrrp-lab: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 3
  }
  sudo=sudo
fi

echo "installing system packages: ${missing[*]}"
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod 755 /usr/sbin/policy-rc.d
  guard=1
fi
cleanup() { [ -z "$guard" ] || $sudo rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  # openvswitch-switch's and ovn's units: the lab's engine ovn runs its own copies in a lab's
  # fabric namespace (lab/ovn/engine.py); a system ovs-vswitchd would also take the kernel
  # datapath where the module exists.
  for service in keepalived frr haproxy openvswitch-switch ovsdb-server ovs-vswitchd \
      ovs-record-hostname ovn-central ovn-northd ovn-ovsdb-server-nb ovn-ovsdb-server-sb \
      ovn-host ovn-controller; do
    $sudo systemctl disable --now "$service.service" >/dev/null 2>&1 || true
  done
fi
