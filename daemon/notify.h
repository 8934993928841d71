/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Telling the service manager how the daemon is doing: the systemd notify
 * protocol (sd_notify(3)), READY=1 once the control socket serves,
 * STOPPING=1 when a stop begins, with a STATUS= line. A datagram to the
 * AF_UNIX socket $NOTIFY_SOCKET names (a path, or an abstract name
 * written with a leading '@'); nothing when it is unset.
 */
#ifndef SHMBUSD_NOTIFY_H
#define SHMBUSD_NOTIFY_H

/* Longest state text sbd_notify() sends; longer is cut. */
#define SBD_NOTIFY_MAX 512

/*
 * Send @p fmt's state lines ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET, if
 * set. Waits at most a second for a full socket; a failure is logged (as
 * a warning) and otherwise ignored: the bus serves anyway. @return 1 when
 * sent, 0 when $NOTIFY_SOCKET is unset, -errno. Any thread.
 */
int sbd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
