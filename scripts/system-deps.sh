#!/usr/bin/env bash
# Installs the system programs the tests and the demo run for real:
# mosquitto (the broker), gpsd with gpsfake (GPS through the real daemon),
# chromium (the console's tests drive it), node/npm (the console's map
# library comes from the npm registry) and rsvg-convert (the terminal view's
# screenshot for the docs, from SVG to PNG).
# As root it installs what is missing with apt-get; otherwise it prints the
# exact command to run and fails, so nothing is skipped quietly.
set -euo pipefail

# program -> Debian package that provides it
declare -A NEEDED=(
  [mosquitto]=mosquitto
  [mosquitto_sub]=mosquitto-clients
  [gpsd]=gpsd
  [gpsfake]=gpsd-clients
  [chromium]=chromium
  [node]=nodejs
  [npm]=npm
  [rsvg-convert]=librsvg2-bin
)

missing=()
for program in "${!NEEDED[@]}"; do
  # mosquitto and gpsd live in /usr/sbin, which is not always on PATH
  if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$program" ]; then
    missing+=("${NEEDED[$program]}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
command="apt-get update && apt-get install -y --no-install-recommends $packages"
if [ "$(id -u)" -ne 0 ]; then
  echo "balise needs these system packages: $packages" >&2
  echo "Run as root:  $command" >&2
  exit 1
fi
echo "Installing system packages: $packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' own services from starting: the tests and
# the demo start mosquitto and gpsd themselves on free ports.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends $packages
