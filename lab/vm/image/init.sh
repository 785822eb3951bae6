#!/bin/busybox sh
# /init of a leasehold lab VM: PID 1, busybox sh. It never exits.
#
# Kernel command line:
#   lh.name=NAME          hostname (default vm)
#   lh.modules=a,b,c      modules to modprobe at boot
#   lh.ip0=A.B.C.D/NN     address of eth0; lh.gw0=A.B.C.D default route via eth0
#   lh.ip1=A.B.C.D/NN     address of eth1; lh.gw1=A.B.C.D default route via eth1
#   lh.share=TAG          mount the virtio-9p share TAG on /share
# Console markers: "@@MODPROBE-FAILED <module>", "@@NET-FAILED <if> <what>",
# "@@SHARE-FAILED <tag>", "@@VM-READY <name> <uptime seconds>",
# "@@AGENT-EXIT <rc>" (each time the guest agent ends; it is restarted).

/bin/busybox --install -s
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/lock /run/drbd
exec </dev/console >/dev/console 2>&1

name=vm mods= share= ip0= ip1= gw0= gw1=
for kv in $(cat /proc/cmdline); do
	case $kv in
	lh.name=*) name=${kv#*=} ;;
	lh.modules=*) mods=${kv#*=} ;;
	lh.share=*) share=${kv#*=} ;;
	lh.ip0=*) ip0=${kv#*=} ;;
	lh.ip1=*) ip1=${kv#*=} ;;
	lh.gw0=*) gw0=${kv#*=} ;;
	lh.gw1=*) gw1=${kv#*=} ;;
	esac
done
hostname "$name"

# The kernel's request_module (e.g. ipvsadm -s wrr loading ip_vs_wrr) runs this.
echo /sbin/modprobe >/proc/sys/kernel/modprobe
# crc32c_generic: libcrc32c (DRBD) needs a crc32c and -cpu qemu64 has no SSE4.2.
for m in virtio_pci virtio_net virtio_blk virtio_console crc32c_generic $(echo "$mods" | tr ',' ' '); do
	modprobe "$m" || echo "@@MODPROBE-FAILED $m"
done

ip link set lo up
# netup IF ADDR GW: wait up to 1 s for IF, give it ADDR, bring it up, route via GW.
netup() {
	n=0
	while [ ! -e "/sys/class/net/$1" ] && [ $n -lt 10 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	if ! ip addr add "$2" dev "$1" || ! ip link set "$1" up; then
		echo "@@NET-FAILED $1 $2"
		return
	fi
	if [ -n "$3" ] && ! ip route add default via "$3" dev "$1"; then
		echo "@@NET-FAILED $1 gw $3"
	fi
}
[ -z "$ip0" ] || netup eth0 "$ip0" "$gw0"
[ -z "$ip1" ] || netup eth1 "$ip1" "$gw1"

if [ -n "$share" ]; then
	if ! modprobe 9pnet_virtio || ! modprobe 9p ||
		! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "$share" /share; then
		echo "@@SHARE-FAILED $share"
	fi
fi

echo "@@VM-READY $name $(cut -d' ' -f1 /proc/uptime)"

# As PID 1 this shell reaps orphans whenever it waits for its foreground child.
agent=/usr/local/bin/leasehold-lab-guest
if [ -x "$agent" ]; then
	while :; do
		"$agent" -port ctl
		echo "@@AGENT-EXIT $?"
		sleep 0.2
	done
fi
# No agent: a shell on the console (with it as controlling tty, so ^C works),
# started again if it ends: PID 1 must not exit.
while :; do
	setsid cttyhack sh
	sleep 1
done
