/*
 * The allow rule of the bus (access.h), shared by the control socket
 * (control.c, SO_PEERCRED and SO_PEERGROUPS) and the bridge (bridge_peer.c,
 * the uid of a loopback peer's socket).
 */
#include "access.h"

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

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

int sbd_access_uid_allowed(const struct sbd_config *cfg, uid_t uid)
{
    gid_t small[64], *groups = small;
    int ngroups = 64, ok;
    struct passwd pw, *found = NULL;
    char buf[4096];

    /* The uid decides, or no group rule exists: no need to ask the user
     * database. */
    if (access_uid(cfg, uid) || (!cfg->have_group && cfg->n_allow_gid == 0))
        return access_uid(cfg, uid);
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || found == NULL)
        return 0; /* unknown to the database: no groups */
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0) {
        /* More than fit: ngroups holds the count needed. */
        groups = malloc((size_t)ngroups * sizeof(*groups));
        if (groups == NULL || getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0) {
            free(groups);
            return access_gid(cfg, pw.pw_gid); /* out of memory, or grew: primary only */
        }
    }
    ok = sbd_access_allowed(cfg, uid, pw.pw_gid, groups, (size_t)ngroups);
    if (groups != small)
        free(groups);
    return ok;
}
