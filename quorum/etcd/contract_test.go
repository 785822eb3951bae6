package etcd_test

import (
	"testing"

	"github.com/leasehold/leasehold/quorum/etcd/etcdtest"
	"github.com/leasehold/leasehold/quorum/quorumtest"
)

func TestContract(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(etcdName(n), func(t *testing.T) {
			quorumtest.RunContract(t, func(t *testing.T) quorumtest.Cluster { return etcdtest.Start(t, n) })
		})
	}
}

func etcdName(n int) string {
	if n == 1 {
		return "etcd-1"
	}
	return "etcd-3"
}
