// Package script runs the external programs of health checks and notify
// hooks: one program at a time per call, in its own process group, with a
// minimal environment, killed as a whole group (SIGKILL) at its timeout or
// when the caller's context ends.
//
// Guaranteed: Run returns only after the program has exited and been
// reaped; a program that outlives its timeout, and every process still in
// its process group at that moment, receives SIGKILL; the daemon's own
// environment (which may hold quorum credentials) is never passed on, only
// PATH and the variables in Command.Env; at most MaxOutput bytes of output
// are kept. Check runs fencing.CheckHook, so the same safety rules apply to
// check and notify scripts as to peer-fence hooks.
//
// Not guaranteed: that a program which leaves its process group (setsid,
// double fork into another group) is killed; that grandchildren which exit
// the group are reaped (PID 1 does that). A program that exits while a
// background child still holds its output open is waited for at most
// PipeDelay more, then its pipes are closed.
package script
