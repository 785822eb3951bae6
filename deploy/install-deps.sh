#!/bin/sh
# Installs the Debian packages named as arguments if any is missing.
# Idempotent: does nothing when all are installed.
set -eu
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
# keepalived's package enables a system service; the tests run their own.
if echo "$missing" | grep -q keepalived; then
	systemctl disable --now keepalived >/dev/null 2>&1 || true
fi
# mariadb-server's too: tests start their own throwaway mariadbd instances.
if echo "$missing" | grep -q mariadb-server; then
	systemctl disable --now mariadb >/dev/null 2>&1 || true
fi
