#!/bin/sh
# Sets up everything the scheduler, its demo and its tests need, and does nothing that is already done.
#  - Debian packages the integration tests and the demo start on loopback (nats-server, prometheus, influxd,
#    and postgresql, whose initdb and postgres live under /usr/lib/postgresql/<major>/bin), and the headless
#    browser of the web console's tests (chromium, with a CJK font so Chinese text renders).
#    bubblewrap (bwrap) isolates the agent's sandbox tasks in Linux namespaces.
#  - npm packages, exactly as package-lock.json pins them (npm ci), re-run only when the lock file changed.
set -eu
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES="nats-server prometheus influxdb postgresql chromium fonts-wqy-microhei bubblewrap"

missing=""
for pkg in $DEBIAN_PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $pkg"
  fi
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing" >&2
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # --no-install-recommends keeps the install small; services installed here are not started by us:
  # the tests and the demo start their own instances on free loopback ports.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

stamp=node_modules/.qy-setup-stamp
want="$(node -v) $(cksum < package-lock.json)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s' "$want" > "$stamp"
fi
