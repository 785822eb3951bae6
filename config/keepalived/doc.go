// Package keepalived converts a keepalived.conf (and the files it
// includes) to leasehold's YAML: `leasehold config import-keepalived`.
//
// Guaranteed:
//   - The input is read as keepalived reads it (lib/parser.c): comments cut
//     anywhere outside double quotes, @ID conditional lines by
//     Options.ConfigID, include with globs and {a,b} relative to the
//     including file, blocks on one line, a stray '}' ignored.
//   - The output is what keepalived ran, not what the file says: its own
//     adjustments are carried over (vrrp_strict, the address owner, sync
//     groups' members, start states and weights, nopreempt and
//     preempt_delay resets, v2 interval rounding, exact state and
//     auth_type, per-instance track_script weights as weighted copies),
//     each with a warning naming file and line. The corpus test checks the
//     outcome against keepalived 2.2.7's own dump (test/interop).
//   - What leasehold cannot do the same way is refused with file, line and
//     what to do instead; nothing that changes failover is dropped with
//     only a warning.
//   - virtual_server and virtual_server_group blocks become leasehold's LVS
//     section as keepalived 2.2.7's checker reads them (lvs.go): keywords
//     and values it ignores ("Unknown keyword", lb_kind dr, lb_algo RR,
//     nb_get_retry outside HTTP_GET/SSL_GET, lb_kind in a real_server) are
//     dropped with a warning and its default written; its adjustments are
//     written out (no protocol is UDP, port 0 is persistent 360 s, a bare
//     persistence_timeout is 360, DR/TUN real servers take the service's
//     port, quorum cut to the total weight, duplicates and wrong-family
//     real servers removed, a service without real servers or a checker
//     without url dropped). lvs_mode is all (keepalived's behaviour; the
//     import writes quorum none); each virtual server follows the
//     instance whose virtual_ipaddress holds its address (a warning when
//     none does). A checker leasehold lacks (SMTP, DNS, UDP, PING, FILE,
//     BFD), a MISC_CHECK by a relative path, TUN options and IPv6 or
//     non-last-byte group ranges are refused; smtp_alert, ha_suspend,
//     thresholds, scheduler flags and bind options are warned about as not
//     converted. A real server's notify_up/notify_down are converted
//     (except one about MySQL, below). lvs_sync_daemon (global_defs, or an
//     instance's older lvs_sync_daemon_interface) is written commented:
//     leasehold's sync master follows the instance's lease, so it needs a
//     quorum.
//   - A track script, notify or real server notify_up/down whose command
//     names mysql, mysqld or mariadb gets a mysql section proposed under
//     its instance (commented: it needs a quorum), with a warning at each
//     script's line; with Options.Quorum etcd or raft a tracked check
//     script is replaced by it (not converted as a track script), without
//     it is kept.
//   - The result passes config.Parse; whatever imports passes the plan
//     `run` builds (daemon.NewPlan), given its scripts exist.
//   - Time and memory are linear in the input; blocks nest at most 16 deep,
//     includes 16; at most 50 errors and 500 warnings are listed (a last
//     line says how many more). Text quoted from the input has its control
//     bytes escaped.
//
// Not guaranteed:
//   - Behaviour that depends on the keepalived version is converted as the
//     newest version reads it, with a warning where older ones differ
//     (backslash escapes before 2.3.2, a repeated unicast peer before 2.3.3,
//     strict mode with unicast peers).
//   - Scripts and includes are resolved on the machine that imports: check
//     the result on the node (`leasehold config check`).
//   - $NAME definitions, ~SEQ/~LST, templates ({{ X }}) and non-UTF-8 text
//     outside comments are refused, not expanded or decoded.
package keepalived
