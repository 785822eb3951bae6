# leasehold — build, test, demo. Targets that touch the kernel need root.
GO       ?= go
BIN      := bin/leasehold
PKGS     := ./...
# Debian packages the tests and the lab use (real peers, not mocks).
DEB_PKGS := keepalived nftables iproute2 tcpdump chromium mariadb-server \
            qemu-system-x86 drbd-utils busybox-static ipvsadm e2fsprogs cpio xz-utils \
            prometheus
# The VM suites (qemu under TCG): run one package at a time, each VM wants a core.
VM_PKGS  := ./lab/vm/... ./lab/vmlab/... ./storage/drbd ./lvs/lvsvm/...
VM_RUNS  ?= 1
export GOFLAGS := -buildvcs=false
# What `leasehold version` reports: a Debian version and the commit, from
# git (deploy/deb/version.sh); override with make VERSION=... COMMIT=...
VERSION_COMMIT := $(shell ./deploy/deb/version.sh)
VERSION  ?= $(word 1,$(VERSION_COMMIT))
COMMIT   ?= $(word 2,$(VERSION_COMMIT))
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# make deb writes leasehold_$(VERSION)_ARCH.deb here.
DEB_OUT  ?= bin

.PHONY: all go-version build build-vm deb test test-unit test-vm deps lint bench bench-codec bench-scale bench-lease bench-failover bench-mysql bench-vm bench-drbd bench-lvs soak demo demo-mysql demo-vm clean

all: build

# go-version: the build needs Go 1.26 (Debian 12's golang package is 1.19,
# which fails with a less clear message).
go-version:
	@v=$$($(GO) env GOVERSION 2>/dev/null | sed 's/^go//'); \
	if [ -z "$$v" ]; then echo "make: no Go on PATH: install Go 1.26 or later from https://go.dev/dl/ (see README.md)" >&2; exit 1; fi; \
	if ! printf '1.26\n%s\n' "$$v" | sort -V -C; then \
		echo "make: Go $$v on PATH ($$(command -v $(GO))); the build needs 1.26 or later: https://go.dev/dl/ (see README.md)" >&2; exit 1; fi

# build: the daemon and CLI, and the lab's etcd server beside it (a binary
# of its own so that the daemon does not link etcd's server).
build: go-version
	@mkdir -p bin
	$(GO) build -ldflags="$(LDFLAGS)" -o bin/ ./cmd/leasehold ./cmd/leasehold-lab-etcd

# deb: a Debian package (dpkg-deb; deploy/deb/build.sh says what goes
# where): a static binary in /usr/sbin, the units, example configs as
# conffiles, the man pages. Installs nothing on this machine.
deb: go-version
	@mkdir -p $(DEB_OUT)/deb-build
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w $(LDFLAGS)" -o $(DEB_OUT)/deb-build/leasehold ./cmd/leasehold
	./deploy/deb/build.sh $(DEB_OUT)/deb-build/leasehold $(VERSION) $(DEB_OUT)

# build-vm: the binaries the VM lab's guests run (static, stripped).
build-vm:
	@mkdir -p bin/vm
	CGO_ENABLED=0 $(GO) build -ldflags="-s -w" -o bin/vm/ ./cmd/leasehold ./cmd/leasehold-lab-guest

# deps installs what the tests need on a fresh Debian machine (idempotent),
# and fetches the kernel package the VM images boot (cached by file name).
deps: go-version
	@./deploy/install-deps.sh $(DEB_PKGS)
	$(GO) mod download
	$(GO) run ./test/vmkernel

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet $(PKGS)

# test: everything — unit, kernel (netns), real keepalived and real quorum
# servers. Set LEASEHOLD_STRICT=1 to make missing facilities fail, not skip.
test: deps lint build
	$(GO) test -count=1 -timeout 45m -p 2 $$($(GO) list $(PKGS) | grep -v -e /lab/vm -e /storage/drbd$$ -e /lvs/lvsvm)
	$(GO) test -count=1 -timeout 15m -p 1 $(VM_PKGS)

# test-vm: only the VM suites (image, harness, the VM lab's drills, DRBD
# promote/demote on real DRBD 8.4, IPVS in a guest kernel).
test-vm: deps lint
	$(GO) test -count=1 -timeout 15m -p 1 -v $(VM_PKGS)

test-unit:
	$(GO) test -count=1 -short $(PKGS)

bench: bench-codec bench-scale bench-lease bench-failover

bench-codec:
	$(GO) test -run '^$$' -bench . -benchmem ./vrrp/ | tee /tmp/leasehold-bench-codec.txt
	$(GO) run ./test/benchrecord codec /tmp/leasehold-bench-codec.txt docs/benchmarks.md

bench-scale: build
	$(GO) run ./test/benchscale -bin $(BIN) -instances 200 -duration 60s -out docs/benchmarks.md

bench-lease:
	LEASEHOLD_BENCH=1 $(GO) test -count=1 -run 'TestBenchLease|TestBenchmark' -v ./quorum/... | tee /tmp/leasehold-bench-lease.txt
	$(GO) run ./test/benchrecord lease /tmp/leasehold-bench-lease.txt docs/benchmarks.md

# bench-failover: leasehold (raft, etcd) against keepalived (v2, v3) through
# graceful, kill -9, freeze and VRRP partition; LEASEHOLD_BENCH_RUNS=N (5).
bench-failover: deps build
	LEASEHOLD_BENCH=1 $(GO) test -count=1 -timeout 90m -run '^TestBenchFailover$$' -v ./test/acceptance/ | tee /tmp/leasehold-bench-failover.txt

# bench-mysql: a MariaDB dual-master pair behind the VIP, leasehold (raft,
# etcd) against keepalived 2.2.7 configured as seed 002, through graceful,
# kill -9, mysqld crash and VRRP partition (async), and graceful, kill -9 and
# mysqld crash (semi-sync), BENCH_MYSQL_RUNS runs each (5), with the write
# checker; the table goes into docs/benchmarks.md. Root; ~20 min.
BENCH_MYSQL_RUNS ?= 5
bench-mysql: deps build
	$(GO) run ./test/mysqlbench -bin $(BIN) -runs $(BENCH_MYSQL_RUNS) -record docs/benchmarks.md | tee /tmp/leasehold-bench-mysql.txt

# soak: an hour of faults (SOAK_DURATION) on a raft lab and an etcd lab at
# once (3 nodes × 3 groups each), then the summaries and memory series into
# docs/benchmarks.md. Root; ~SOAK_DURATION + 2 min.
SOAK_DURATION ?= 1h
soak: deps build
	$(GO) build -o bin/soakrun ./test/soakrun
	bin/soakrun -bin $(BIN) -quorum raft -duration $(SOAK_DURATION) -json bin/soak-raft.json > bin/soak-raft.log 2>&1 & r=$$!; \
	bin/soakrun -bin $(BIN) -quorum etcd -duration $(SOAK_DURATION) -json bin/soak-etcd.json > bin/soak-etcd.log 2>&1 & e=$$!; \
	wait $$r; rr=$$?; wait $$e; re=$$?; \
	bin/soakrun -record docs/benchmarks.md bin/soak-raft.json bin/soak-etcd.json; \
	tail -n 30 bin/soak-raft.log bin/soak-etcd.log; test $$rr = 0 && test $$re = 0

# bench-lvs: leasehold and keepalived 2.2.7 as LVS directors in the same
# VMs (lvs/lvsvm TestBenchLVS): real-server failure detection and
# recovery, director failover, CPU at 1,000 checked real servers; the
# tables in docs/benchmarks.md. LVS_BENCH_RUNS sets the detection runs
# (20), LVS_BENCH_FAILOVER_RUNS the failover runs per fault (1). ~20 min
# on 2 cores.
bench-lvs: deps
	LVS_BENCH=1 $(GO) test -count=1 -timeout 60m -run '^TestBenchLVS$$' -v ./lvs/lvsvm/ | tee /tmp/leasehold-bench-lvs.txt
	$(GO) run ./test/benchrecord lvs /tmp/leasehold-bench-lvs.txt docs/benchmarks.md

# bench-vm: the VM lab (2 VMs, etcd, softdog): every drill VM_RUNS times,
# the table, bin/vm-drill-report.html and the figures in docs/benchmarks.md.
bench-vm: deps build build-vm
	$(GO) run ./test/vmdrill -runs $(VM_RUNS) -html bin/vm-drill-report.html -record docs/benchmarks.md

# bench-drbd: DRBD failover in the VM lab, leasehold against keepalived
# 2.2.7 (seed 002's notify scripts) in one run: kill -9 and freeze of the
# daemon on the Primary, DRBD_RUNS per leasehold cell (keepalived: 5, its
# outcome does not vary) and seed 002's partition 3 times per system,
# within DRBD_BUDGET; the table and the figures in docs/benchmarks.md.
DRBD_RUNS   ?= 20
DRBD_BUDGET ?= 60m
bench-drbd: deps build build-vm
	$(GO) run ./test/drbdbench -runs $(DRBD_RUNS) -budget $(DRBD_BUDGET) -record docs/benchmarks.md

# demo-vm: the same drills once on the VM lab, the table and the HTML report.
demo-vm: deps build build-vm
	$(GO) run ./test/vmdrill -html bin/vm-drill-report.html

# demo: a lab (2 nodes, raft witness, a MariaDB dual-master pair behind
# group 1), every drill with the write checker writing through the VIP,
# mysqld-crash included, the table and the HTML report
# (bin/drill-report.html), then the lab down; the same as
#   leasehold lab up --mysql && leasehold drill all --html F; leasehold lab down
demo: deps build
	$(GO) run ./test/demo -bin $(BIN) -mysql -html bin/drill-report.html

# demo-mysql: the same with semi-synchronous replication between the two
# MariaDB servers (bin/drill-report-mysql.html).
demo-mysql: deps build
	$(GO) run ./test/demo -bin $(BIN) -mysql -semi-sync -html bin/drill-report-mysql.html

clean:
	rm -rf bin
