/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who may use the bus: one rule for every door into the daemon (the
 * control socket, and the bridge for local peers without a token). A peer
 * is let in when its uid is the daemon's or an --allow-uid, or when its
 * primary or a supplementary group is --group or an --allow-gid.
 */
#ifndef SHMBUSD_ACCESS_H
#define SHMBUSD_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* The rule, for a peer whose credentials the kernel gave: @p uid, primary
 * @p gid and @p ngroups supplementary @p groups (may be NULL when 0).
 * Any thread. @return 1 if allowed, else 0. */
int sbd_access_allowed(const struct sbd_config *cfg, uid_t uid, gid_t gid, const gid_t *groups,
                       size_t ngroups);

/* The rule for a peer known by its uid only (a TCP peer): its groups are
 * those the user database gives that uid (getpwuid_r(), getgrouplist()),
 * the groups it would have after logging in, not those its process has
 * now. A uid the database does not know, or whose lookup fails (logged),
 * counts by its uid alone. A uid's groups are kept 10 s (64 uids at most),
 * so only the first connection of a uid in that time may block on the
 * user database (NSS). Any thread. @return 1 if allowed, else 0. */
int sbd_access_uid_allowed(const struct sbd_config *cfg, uid_t uid);

/* Is @p p (@p len bytes, any bytes) the token @p tok (a string)? Constant
 * time in the token's bytes, so that timing tells nothing of it: the
 * bridge's AUTH and the metrics endpoint's bearer token. Any thread. */
int sbd_access_token_ok(const char *tok, const char *p, size_t len);

/* User database lookups sbd_access_uid_allowed() made so far: one per
 * uid not looked up in the last 10 s. Any thread. */
uint64_t sbd_access_lookups(void);

#endif
