// Package lvsvm runs package lvs's kernel tests where IPVS exists: in a
// VM of the lab (lab/vm: Debian's stock kernel under qemu TCG, with ip_vs
// and its schedulers loaded), since the host's kernel here has none. It
// has tests only; make test runs it with the other VM suites, one at a
// time.
package lvsvm
