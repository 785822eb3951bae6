// Package statusapi serves and reads leasehold's local status API: GET
// /status (JSON), GET /metrics (Prometheus text) and, opt-in, the Go
// profiler under /debug/pprof/, on a unix socket or a loopback TCP port.
//
// Guaranteed (Server):
//   - No client can hold the daemon's resources: every connection has a
//     header, read and write deadline, an idle keep-alive connection is
//     closed after IdleTimeout, headers are capped at MaxHeaderBytes, and at
//     most MaxConns connections are open at once. When the cap is reached a
//     new connection evicts the longest-idle one (never one serving a
//     request); if every connection is busy the new one is closed at once.
//     A client that leaks connections therefore costs a bounded number of
//     goroutines and file descriptors, which return to zero IdleTimeout
//     after it stops.
//   - Only GET (and HEAD) are answered; anything else is 405.
//   - The profiler is off unless Options.Pprof is set, and is refused on
//     anything but a unix socket (file permissions are its access control).
//   - Listen refuses a TCP address that is not loopback.
//   - NewServer starts nothing; Run serves until its context ends and then
//     shuts down within ShutdownTimeout.
//
// Guaranteed (Client): one http.Transport per Client, reused for every
// call (keep-alive), at most a few connections per daemon, idle ones closed
// before the server would close them, every call bounded by a timeout.
// Keep one Client per daemon for as long as you poll it.
//
// Not guaranteed: authentication (a unix socket's mode 0660 and a loopback
// address are the access control), answers from a daemon that is frozen
// (calls time out).
package statusapi
