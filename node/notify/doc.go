// Package notify runs a group's keepalived-style notify scripts
// (notify_master, notify_backup, notify_fault, notify_stop, notify) when
// the node package reports a state change.
//
// Arguments, as keepalived's vrrp_notify.c: each configured script is a
// command line split as keepalived splits it (script.Split: quotes and
// backslash escapes, no shell), so "/usr/local/bin/vrrp.sh MASTER VI_1"
// runs vrrp.sh with MASTER and VI_1. The state's own script (Master,
// Backup, Fault, Stop) runs with those arguments only; then the generic
// script (Generic, keepalived's "notify") runs with its own arguments
// followed by INSTANCE or GROUP (Config.Kind), the group name,
// MASTER|BACKUP|FAULT|STOP, and the priority (0 for GROUP, as keepalived). Both get only PATH and LEASEHOLD_GROUP, LEASEHOLD_EPOCH,
// LEASEHOLD_STATE, LEASEHOLD_PRIORITY in their environment.
//
// Guaranteed: Notify never blocks (it only queues); scripts run one at a
// time, in the order of Notify calls (specific before generic), each in its
// own process group killed with SIGKILL at Timeout, whose failure or
// timeout is logged and counted and does not stop the queue. The queue
// holds at most QueueLen notifications: when full, the oldest is dropped
// and counted, so a stuck script costs at most one Timeout per
// notification and never grows memory or blocks the daemon. Programs are
// checked with script.Check at New and again before every run.
//
// Differences from keepalived: keepalived forks notify scripts without
// waiting, so they may overlap and have no timeout (except STOP, 1 s);
// here they are serialized with a timeout. keepalived's optional user and
// group after the command are not supported (Config.RunAs is one user for
// all of a group's scripts).
// Not guaranteed: that a notification queued when Run's context ends runs
// at all; call Flush with a time-boxed context at shutdown for that.
package notify
