// Package script runs the operator's external programs: vrrp_script
// checks, notify scripts (notify_master, ...), and the fencing package's
// peer-fence, promote and demote hooks. It is the one place that splits
// their command lines as keepalived does (Split; ParseLine adds the
// absolute-path rule; SplitQuoted is keepalived's first pass over a whole
// configuration line, for the importer; Join quotes words back), decides
// whether a program is safe to run (Check), and runs it (Run).
//
// Guaranteed: Split matches keepalived's splitting of script and notify
// command lines (quotes, backslash escapes) and refuses what keepalived
// would misread or drop (an unbalanced quote, a trailing backslash, an
// escaped NUL) with an error wrapping ErrSyntax; it never panics and its
// output is never longer than its input. Run checks the program with Check
// first (absolute path; the file, its directory and a symlink's target
// directory not world-writable; owned by root or the daemon's user;
// refusals wrap ErrUnsafe and name the path); runs it in its own process
// group with "/" as working directory and a minimal environment: the
// daemon's own environment (which may hold quorum credentials) is never
// passed on, only PATH and the variables in Command.Env; kills the whole
// group with SIGKILL at its timeout or when the caller's context ends;
// returns only after the program has exited and been reaped; keeps at
// most MaxOutput bytes of its output (stdout and stderr together).
//
// Not guaranteed: that a program which leaves its process group (setsid,
// double fork into another group) is killed; that grandchildren which exit
// the group are reaped (PID 1 does that). A program that exits while a
// background child still holds its output open is waited for at most
// PipeDelay more, then its pipes are closed. A bare program name is not
// looked up on PATH (keepalived does): configuration requires an absolute
// path, and the keepalived importer resolves one.
package script
