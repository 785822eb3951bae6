#!/bin/sh
# build.sh BINARY VERSION OUTDIR: packs leasehold_VERSION_ARCH.deb into
# OUTDIR with dpkg-deb (make deb builds BINARY and calls this).
#
#   /usr/sbin/leasehold
#   /lib/systemd/system/leasehold.service, leasehold-witness.service
#   /etc/leasehold/examples/*.yaml            conffiles, never a live config
#   /usr/share/man/man8/leasehold.8.gz, man5/leasehold.yaml.5.gz
#   /usr/share/doc/leasehold/                 README, docs/*.md, copyright
#   /usr/share/leasehold/monitoring/          Prometheus alert rules, Grafana dashboard
#
# Nothing is enabled or started: a unit runs once the operator has written
# /etc/leasehold/leasehold.yaml (or witness.yaml) and enabled it.
set -eu
umask 022
[ $# -eq 3 ] || { echo "usage: $0 BINARY VERSION OUTDIR" >&2; exit 2; }
bin=$1 version=$2 out=$3
src=$(cd "$(dirname "$0")/../.." && pwd)
case $(go env GOARCH 2>/dev/null || dpkg --print-architecture) in
amd64) arch=amd64 ;;
arm64) arch=arm64 ;;
*) echo "build.sh: GOARCH $(go env GOARCH): only amd64 and arm64 are packaged" >&2; exit 1 ;;
esac
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

install -D -m 0755 "$bin" "$root/usr/sbin/leasehold"
for u in leasehold.service leasehold-witness.service; do
	install -D -m 0644 "$src/deploy/systemd/$u" "$root/lib/systemd/system/$u"
done
install -d -m 0755 "$root/etc/leasehold/examples"
install -m 0644 "$src/deploy/leasehold.yaml" "$src"/deploy/examples/*.yaml \
	"$src"/deploy/examples/witness/*.yaml "$root/etc/leasehold/examples/"
for m in leasehold.8 leasehold.yaml.5; do
	sec=${m##*.}
	install -d -m 0755 "$root/usr/share/man/man$sec"
	gzip -9n <"$src/docs/man/$m" >"$root/usr/share/man/man$sec/$m.gz"
done
install -d -m 0755 "$root/usr/share/leasehold/monitoring"
install -m 0644 "$src/deploy/monitoring/leasehold-alerts.yaml" "$src/deploy/monitoring/leasehold-dashboard.json" \
	"$root/usr/share/leasehold/monitoring/"
doc=$root/usr/share/doc/leasehold
install -d -m 0755 "$doc"
install -m 0644 "$src/README.md" "$src"/docs/*.md "$doc/"
install -m 0644 "$src/deploy/deb/copyright" "$doc/copyright"
printf 'leasehold (%s) unstable; urgency=medium\n\n  * Built from the leasehold repository (make deb).\n\n -- %s  %s\n' \
	"$version" "${DEB_MAINTAINER:-leasehold developers <noreply@leasehold.invalid>}" "$(date -R -u -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" |
	gzip -9n >"$doc/changelog.Debian.gz"

install -d -m 0755 "$root/DEBIAN"
for s in postinst prerm postrm; do
	install -m 0755 "$src/deploy/deb/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	-e "s/@MAINTAINER@/${DEB_MAINTAINER:-leasehold developers <noreply@leasehold.invalid>}/" \
	"$src/deploy/deb/control.in" >"$root/DEBIAN/control"

mkdir -p "$out"
deb=$out/leasehold_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
