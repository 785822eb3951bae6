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
# keepalived's, prometheus's and mariadb-server's packages enable a system
# service; the tests run their own keepalived and mariadbd and only need
# promtool.
for pkg in keepalived prometheus mariadb-server; do
	svc=$pkg
	[ "$pkg" = mariadb-server ] && svc=mariadb
	if echo "$missing" | grep -qw "$pkg"; then
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
	fi
done
