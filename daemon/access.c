/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The allow rule of the bus (access.h), shared by the control socket
 * (control.c, SO_PEERCRED and SO_PEERGROUPS) and the bridge (bridge/peer.c,
 * the uid of a loopback peer's socket).
 */
#include "access.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util/clock.h"
#include "util/vec.h"

/* Is @p gid allowed in: the --group of the bus, or an --allow-gid? */
static int access_gid(const struct sbd_config *cfg, gid_t gid)
{
    if (cfg->have_group && gid == cfg->group)
        return 1;
    for (unsigned i = 0; i < cfg->n_allow_gid; i++)
        if (cfg->allow_gid[i] == gid)
            return 1;
    return 0;
}

/* The uid part of the rule. */
static int access_uid(const struct sbd_config *cfg, uid_t uid)
{
    if (uid == getuid())
        return 1;
    for (unsigned i = 0; i < cfg->n_allow_uid; i++)
        if (cfg->allow_uid[i] == uid)
            return 1;
    return 0;
}

int sbd_access_allowed(const struct sbd_config *cfg, uid_t uid, gid_t gid, const gid_t *groups,
                       size_t ngroups)
{
    if (access_uid(cfg, uid) || access_gid(cfg, gid))
        return 1;
    for (size_t i = 0; i < ngroups; i++)
        if (access_gid(cfg, groups[i]))
            return 1;
    return 0;
}

/*
 * The groups of a uid, from the user database, kept a while: the bridge
 * judges every loopback connection by them, on its I/O thread, and the
 * user database may be remote (sssd, LDAP). A local user reconnecting in
 * a loop costs one lookup per ACCESS_TTL_NS, not one per connection.
 * ACCESS_CACHE_N uids at most; a full table drops its oldest entry.
 */
#define ACCESS_CACHE_N 64
#define ACCESS_TTL_NS  (10ull * 1000000000ull)
/* The most getpwuid_r() is given for one entry's strings. */
#define ACCESS_PW_BUF_MAX (1u << 20)

struct access_entry {
    uid_t uid;
    int known;     /* the database knows the uid: gid and groups hold */
    gid_t gid;     /* its primary group */
    gid_t *groups; /* its supplementary groups (malloc) */
    size_t ngroups;
    uint64_t until; /* sb_mono_ns() past which it is looked up again; 0: free */
};

static struct access_entry access_cache[ACCESS_CACHE_N];
static pthread_mutex_t access_mu = PTHREAD_MUTEX_INITIALIZER;
/* relaxed: a counter for the debug log and tests, ordering nothing. */
static _Atomic uint64_t access_lookups;

uint64_t sbd_access_lookups(void)
{
    /* relaxed: a count read on its own; no data is published with it. */
    return atomic_load_explicit(&access_lookups, memory_order_relaxed);
}

/* The passwd entry of @p uid into @p pw, its strings in *buf (malloc,
 * grown on ERANGE up to ACCESS_PW_BUF_MAX). @return 1 found, 0 not in the
 * database, -errno on failure (logged). */
static int access_getpw(uid_t uid, struct passwd *pw, char **buf)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t first = hint > 0 ? (size_t)hint : 4096, cap = 0;
    struct passwd *found = NULL;
    int rc;

    for (;;) {
        /* The first buffer, or a larger one after an entry longer than
         * the last (ERANGE): util/vec.h doubles it. */
        if (SB_VEC_RESERVE(*buf, cap, cap, 1, first) < 0) {
            rc = ENOMEM;
            break;
        }
        rc = getpwuid_r(uid, pw, *buf, cap, &found);
        if (rc != ERANGE || cap >= ACCESS_PW_BUF_MAX)
            break;
    }
    if (rc == 0)
        return found != NULL;
    sbd_log(SBD_WARN, "access: uid %u: the user database lookup failed (%s): only its uid counts",
            (unsigned)uid, strerror(rc));
    return -rc;
}

/* Look @p uid's groups up in the user database into @p e. */
static void access_lookup(uid_t uid, struct access_entry *e)
{
    gid_t small[64], *groups = small;
    int ngroups = 64;
    struct passwd pw;
    char *buf = NULL;

    /* relaxed: counts the lookup only; the cache it fills is under
     * access_mu. */
    atomic_fetch_add_explicit(&access_lookups, 1, memory_order_relaxed);
    memset(e, 0, sizeof(*e));
    e->uid = uid;
    if (access_getpw(uid, &pw, &buf) <= 0)
        goto out; /* unknown to the database, or failed: no groups */
    e->known = 1;
    e->gid = pw.pw_gid;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0) {
        /* More than fit: ngroups holds the count needed. */
        groups = malloc((size_t)ngroups * sizeof(*groups));
        if (groups == NULL || getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0) {
            sbd_log(SBD_WARN,
                    "access: uid %u: its %d groups could not be read: only its "
                    "primary group counts",
                    (unsigned)uid, ngroups);
            free(groups);
            goto out;
        }
    }
    e->groups = malloc((size_t)ngroups * sizeof(*groups));
    if (e->groups != NULL) {
        memcpy(e->groups, groups, (size_t)ngroups * sizeof(*groups));
        e->ngroups = (size_t)ngroups;
    }
    if (groups != small)
        free(groups);
out:
    free(buf);
}

/* The rule's verdict on cache entry @p e. Under access_mu. */
static int access_entry_allowed(const struct sbd_config *cfg, const struct access_entry *e)
{
    if (!e->known)
        return access_uid(cfg, e->uid);
    return sbd_access_allowed(cfg, e->uid, e->gid, e->groups, e->ngroups);
}

/* The entry of @p uid still fresh at @p now, or NULL. Under access_mu. */
static struct access_entry *access_find(uid_t uid, uint64_t now)
{
    for (unsigned i = 0; i < ACCESS_CACHE_N; i++)
        if (access_cache[i].until > now && access_cache[i].uid == uid)
            return &access_cache[i];
    return NULL;
}

/* Keep @p e (taking its groups): over a stale entry of its uid, a free
 * one, or the oldest. Under access_mu. */
static void access_keep(struct access_entry *e)
{
    struct access_entry *slot = &access_cache[0];

    for (unsigned i = 0; i < ACCESS_CACHE_N; i++) {
        struct access_entry *x = &access_cache[i];

        if (x->until != 0 && x->uid == e->uid) {
            slot = x;
            break;
        }
        if (x->until < slot->until)
            slot = x;
    }
    free(slot->groups);
    *slot = *e;
}

int sbd_access_uid_allowed(const struct sbd_config *cfg, uid_t uid)
{
    struct access_entry *hit, fresh;
    uint64_t now = sb_mono_ns();
    int ok;

    /* The uid decides, or no group rule exists: no need to ask the user
     * database. */
    if (access_uid(cfg, uid) || (!cfg->have_group && cfg->n_allow_gid == 0))
        return access_uid(cfg, uid);
    pthread_mutex_lock(&access_mu);
    hit = access_find(uid, now);
    if (hit != NULL) {
        ok = access_entry_allowed(cfg, hit);
        pthread_mutex_unlock(&access_mu);
        return ok;
    }
    pthread_mutex_unlock(&access_mu);
    /* Outside the lock: the lookup may block, other uids need not wait. */
    access_lookup(uid, &fresh);
    fresh.until = now + ACCESS_TTL_NS;
    ok = access_entry_allowed(cfg, &fresh);
    pthread_mutex_lock(&access_mu);
    access_keep(&fresh);
    pthread_mutex_unlock(&access_mu);
    return ok;
}

int sbd_access_token_ok(const char *tok, const char *p, size_t len)
{
    size_t tl = strlen(tok);
    unsigned char diff = (unsigned char)(len != tl);

    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(tok[i] ^ (i < len ? p[i] : 0));
    return diff == 0;
}
