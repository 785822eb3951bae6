// Package agent is both ends' view of the lab VM control protocol: the
// wire types (Request, Response) and the guest side (Server), which
// cmd/leasehold-lab-guest serves on a virtio-serial port and the host
// package lab/vm speaks to through qemu's ctl.sock.
//
// The protocol is JSON lines. Each request is one line
// {"id":N,"op":OP,...}; the reply is one line {"id":N,...} carrying "err"
// when the operation failed. Replies come in completion order, not request
// order: every request is handled in a goroutine of its own, and a reply is
// written as one whole line under a mutex. Ops and their fields:
//
//   - exec {script, timeout_ms} → {rc, out[, truncated]}: /bin/sh -c script
//     in /root, stdin /dev/null, its own process group. rc is the exit
//     code, 128+N if a signal N ended it, -1 if the timeout killed the
//     whole process group (SIGKILL). out is stdout and stderr combined,
//     capped at MaxOutput bytes (truncated:true says the rest was dropped).
//     Output that background processes write after the shell exited is
//     collected for at most 200 ms more.
//   - spawn {argv, log} → {pid, start_time}: argv[0] (looked up in PATH)
//     in a new session, stdin /dev/null, stdout and stderr appended to log
//     (/dev/null if empty), cwd /root. The agent reaps it; nobody waits
//     for it. start_time is field 22 of /proc/PID/stat (clock ticks since
//     boot), read before the process can have been reaped.
//   - signal {pid, start_time, sig} → {}: sends sig through a pidfd opened
//     before /proc/PID/stat was compared with start_time, so a recycled PID
//     never gets the signal; a mismatch is an error and nothing is sent.
//   - alive {pid, start_time} → {alive}: true while /proc/PID/stat exists,
//     shows that start time, and the process is not a zombie.
//   - http {unix, method, path, body, timeout_ms} → {status, body[,
//     truncated]}: one HTTP/1.1 request over the unix socket, no keep-alive,
//     no redirects followed, reply body capped at MaxOutput.
//   - read {path} → {out[, truncated]}: the file's first MaxOutput bytes,
//     read by the agent itself (no shell: /proc/drbd sampled 10×/s).
//
// Guaranteed: at most MaxInFlight requests run at once (more are refused
// with an err reply at once); a request line longer than MaxLine is
// discarded and answered with id 0; unknown ops and malformed requests
// get an err reply. Every exec and http carries its own timeout.
//
// Not guaranteed: bodies and output are JSON strings, so bytes that are not
// UTF-8 arrive as U+FFFD. Replies to a connection that ended are dropped,
// not resent on the next one. Processes started by exec or spawn outlive
// the agent.
package agent
