// Package lvs runs a director's IPVS table: virtual servers from the
// configuration in keepalived's vocabulary (virtual_server,
// virtual_server_group, lb_algo, lb_kind, persistence_timeout, quorum,
// sorry_server, inhibit_on_failure, alpha; real_server with TCP_CHECK,
// HTTP_GET, SSL_GET and MISC_CHECK), real-server checks, and a reconcile
// loop that makes the kernel's table the desired one.
//
// The decisions are pure: Step is one checker's retry logic (keepalived's
// tcp_epilog: a success is up at once, an up checker goes down after
// retry+1 failures spaced by delay_before_retry), QuorumStep a virtual
// server's quorum with hysteresis, Desired the kernel services of a
// virtual server for its real servers' states, and Diff the changes from
// the kernel's table to the desired one. Their tables of cases are the
// specification.
//
// Guaranteed:
//   - the desired table is configuration × check results × lease: in
//     ModeOwner a virtual server is desired only while this node owns the
//     lease of the group it follows; in ModeAll always;
//   - Diff touches only services this node manages (those in its
//     configuration and those recorded in its state file as created by an
//     earlier run); any other service in the kernel (ipvsadm's,
//     kube-proxy's) is never changed; Diff of a table against itself is
//     empty, so reconciling is idempotent.
//
// Not guaranteed: that a real server marked alive serves (a check is a
// sample); that a scheduler module exists in the kernel before the
// service using it is added (the kernel's error names the service).
package lvs
