/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who may use the bridge without a token (docs/protocol.md, "Who may
 * connect"): a loopback peer whose socket's uid the bus's allow rule lets
 * in (access.h). The kernel's socket diagnostics (NETLINK_SOCK_DIAG,
 * inet_diag) give that uid; nothing the peer sends is believed. A peer on
 * another host, or whose uid cannot be learned, is refused. (Whoever it
 * is, a peer that speaks HTTP is closed before it runs anything: admit.h.)
 */
#ifndef SHMBUSD_BRIDGE_PEER_H
#define SHMBUSD_BRIDGE_PEER_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

enum sbb_peer_verdict {
    SBB_PEER_UNCHECKED = 0, /* not judged (a zeroed one): never let in as such */
    SBB_PEER_OK,            /* a loopback peer of an allowed uid */
    SBB_PEER_UID,           /* a loopback peer of a uid the bus does not allow */
    SBB_PEER_REMOTE,        /* not a loopback address: needs the token */
    SBB_PEER_UNKNOWN,       /* loopback, but no live socket of it vouches for a uid: */
                            /* closed, reset (-ECONNRESET), no inet_diag, or the
                             * overflow uid (-EOVERFLOW) */
};

/* What was learned of a peer. */
struct sbb_peer {
    enum sbb_peer_verdict verdict;
    uid_t uid; /* SBB_PEER_OK, SBB_PEER_UID, and -EOVERFLOW: its socket's uid */
    int err;   /* SBB_PEER_UNKNOWN: why (-errno) */
};

/*
 * Judge the peer of the accepted TCP socket @p fd, whose remote address
 * is @p addr, into @p out. One netlink round trip (bounded by a second)
 * for a loopback peer, and a user database lookup when the bus has group
 * rules (access.h: may block on NSS). Any thread.
 */
void sbb_peer_check(const struct sbd_config *cfg, int fd, const struct sockaddr_storage *addr,
                    struct sbb_peer *out);

/* The kernel's overflow uid (/proc/sys/kernel/overflowuid, 65534 by
 * default): inet_diag reports it for a socket whose uid has no mapping in
 * the daemon's user namespace, so it stands for any such uid and is never
 * let in, even when the allow rule names it. Any thread. */
uid_t sbb_peer_overflow_uid(void);

/* Is TCP state @p state (inet_diag's idiag_state) one the peer of a
 * connection our end has accepted can be in: ESTABLISHED, FIN_WAIT1 or
 * FIN_WAIT2? Never SYN_SENT (a socket that took a closed peer's port and
 * is connecting), LISTEN or TIME_WAIT. */
int sbb_peer_state_live(unsigned state);

/* At the bridge's start: warn when --allow-uid names the overflow uid, or
 * the daemon runs as it (peers of that uid are refused without a token,
 * whatever the rule). */
void sbb_peer_warn(const struct sbd_config *cfg);

/* Why @p p is refused by the door @p door ("bridge") whose token option
 * is @p opt ("--bridge-token-file"), as one line of text (no CR or LF)
 * for the reply and the log. */
void sbb_peer_why(const struct sbb_peer *p, const char *door, const char *opt, char *out,
                  size_t cap);

#endif
