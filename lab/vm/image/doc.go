// Package image builds a bootable image for the lab's qemu (TCG) VMs from
// Debian's stock kernel package and the host's own userland tools: an
// uncompressed vmlinux (booted through its PVH entry) and a small
// busybox initramfs that carries real DRBD 8.4 (the in-tree drbd.ko with
// the host's drbd-utils), IPVS (ipvsadm), softdog, nf_tables, 9p and ext4.
//
// Build takes a linux-image-*.deb (FetchKernel finds and downloads the
// current one with apt-get, without installing it), unpacks it once into
// CacheDir/kroot/<deb name>/, collects the modules asked for with their
// .modinfo dependencies, runs `busybox depmod` over them, and writes a
// usr-merged tree with busybox, drbdadm, drbdsetup, drbdmeta, ipvsadm,
// mke2fs (e2fsprogs': busybox's makes ext2 without a journal),
// /usr/lib/drbd/drbd{adm,setup}-84, their shared libraries, /etc/drbd.conf
// (including drbd.d/global_common.conf and drbd.d/*.res), Options.Files
// and the /init script (init.sh) as a newc cpio archive, gzip-compressed.
//
// The guest /init reads lh.name=, lh.modules=a,b, lh.ip0=/lh.ip1=
// (A.B.C.D/NN for eth0/eth1), lh.gw0=/lh.gw1= and lh.share=TAG (9p, on
// /share) from the kernel command line, prints "@@VM-READY <name>
// <uptime>" on the console (after "@@MODPROBE-FAILED <m>",
// "@@NET-FAILED …" or "@@SHARE-FAILED <tag>" for what did not work), then
// runs /usr/local/bin/leasehold-lab-guest -port ctl in a respawn loop
// ("@@AGENT-EXIT <rc>" each time it ends), or, without it, a shell on
// the console. It never exits.
//
// Guaranteed:
//   - Reproducible: the same inputs give a byte-identical initramfs
//     (sorted entries, mtime 0, uid/gid 0, sequential inode numbers, no
//     gzip name or time).
//   - Cached by input hash: Image.Hash is the sha256 of the kernel
//     package's file name and size, the module list, the init script, the
//     fixed /etc files and the content and mode of every host file copied
//     (tools, their libraries, Options.Files). Build returns the image in
//     CacheDir/images/<hash>/ without rebuilding when it is complete there.
//   - Concurrent builds (goroutines or processes) never see a half-written
//     output: the unpacked kernel, the vmlinux and each image directory
//     appear by rename.
//   - A module that is neither a .ko file nor built in is an error naming
//     it; Image.Modules lists the modules included, dependencies first.
//   - No root is needed, neither to build nor to boot.
//
// Not guaranteed:
//   - The host must be x86_64 Debian (12 is what was measured) with
//     dpkg-deb, xz, busybox-static (/bin/busybox), drbd-utils, ipvsadm
//     and e2fsprogs installed; FetchKernel also needs apt-cache and
//     apt-get with a bookworm source. The guest runs the host's binaries and glibc, so the
//     guest userland is whatever the host has; libraries are found like
//     ld.so does (RUNPATH, then the Debian multiarch and classic
//     directories, not /usr/local or ld.so.conf extras).
//   - Only the kernel package's name and size enter the hash, not its
//     content: a different .deb under the same name and size reuses the
//     old image. Nothing in CacheDir is ever removed.
//   - Compressed modules (.ko.xz, .ko.zst) need the xz or zstd tool; only
//     xz-compressed bzImages give a vmlinux. When no vmlinux can be had
//     (also: no CONFIG_PVH=y), Image.Kernel is the bzImage, which boots
//     about 2 s slower under TCG.
//   - The kernel version is whatever the .deb holds; FetchKernel follows
//     linux-image-amd64, so it moves to new ABIs as Debian publishes them.
package image
