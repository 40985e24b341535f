#!/usr/bin/env bash
# Installs the system programs balise runs for real.
#   scripts/system-deps.sh test   everything the tests need: mosquitto (the broker), gpsd with
#                                 gpsfake (GPS through the real daemon), chromium (the console's
#                                 tests drive it), node/npm (the console's map library comes from
#                                 the npm registry), rsvg-convert (the terminal view's screenshot,
#                                 SVG to PNG). All are required.
#   scripts/system-deps.sh demo   what the demo needs: node/npm (required) and mosquitto, which
#                                 is optional: without it the demo runs its embedded broker.
# As root it installs what is missing with apt-get; otherwise it prints the exact command to
# run and fails when a required program is missing, so nothing is skipped quietly.
# BALISE_SBIN (default /usr/sbin) is where mosquitto and gpsd live when not on PATH.
set -euo pipefail

role=${1:-test}
sbin=${BALISE_SBIN:-/usr/sbin}

# program -> Debian package that provides it
declare -A REQUIRED OPTIONAL
case "$role" in
  test)
    REQUIRED=([mosquitto]=mosquitto [mosquitto_sub]=mosquitto-clients [gpsd]=gpsd
              [gpsfake]=gpsd-clients [chromium]=chromium [node]=nodejs [npm]=npm
              [rsvg-convert]=librsvg2-bin)
    OPTIONAL=() ;;
  demo)
    REQUIRED=([node]=nodejs [npm]=npm)
    OPTIONAL=([mosquitto]=mosquitto) ;;
  *)
    echo "usage: $0 [test|demo]  (got '$role')" >&2
    exit 2 ;;
esac

missing_packages() {
  local -n table=$1
  local program
  for program in "${!table[@]}"; do
    # mosquitto and gpsd live in sbin, which is not always on PATH
    if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "$sbin/$program" ]; then
      echo "${table[$program]}"
    fi
  done | sort -u | tr '\n' ' '
}

required=$(missing_packages REQUIRED)
optional=$(missing_packages OPTIONAL)
[ -z "$required$optional" ] && exit 0

packages="$required$optional"
command="apt-get update && apt-get install -y --no-install-recommends $packages"
if [ "$(id -u)" -ne 0 ]; then
  if [ -n "$required" ]; then
    echo "balise needs these system packages: $packages" >&2
    echo "Run as root:  $command" >&2
    exit 1
  fi
  echo "Note: $optional not installed and not root: the demo uses its embedded broker." >&2
  echo "For the real mosquitto, as root:  $command" >&2
  exit 0
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
# shellcheck disable=SC2086  # one word per package
apt-get install -y -qq --no-install-recommends $packages
