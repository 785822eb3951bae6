package netlab

// Internals the external tests (package netlab_test) look at.
var (
	VRRPTable = vrrpTable
	InNetns   = inNetns
)
