/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd's federation options (--nats and its kin, the pattern options,
 * --persist-*): parsed and checked for config.c (config_int.h), with
 * their part of the usage text.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "fed/fed.h"
#include "log.h"
#include "registry/admin.h"

/* The federation part of the usage text. */
void sbd_config_nats_usage(FILE *f, const struct sbd_config *d)
{
    char bytes[SBD_SIZE_TEXT];

    sbd_config_size_text(d->persist_max_bytes, bytes);
    fprintf(f,
            "Federation through NATS (off unless --nats is given):\n"
            "  --nats URL[,URL...] join the NATS server or cluster at nats://HOST[:PORT]\n"
            "                      or tls://HOST[:PORT]; the daemon serves the bus while\n"
            "                      it connects, and reconnects forever\n"
            "  --nats-creds FILE   a NATS .creds file (JWT and nkey seed)\n"
            "  --nats-token-file FILE  a token: the first line of FILE\n"
            "  --nats-user-file FILE   USER:PASSWORD on the first line of FILE\n"
            "                      (secrets only in files, never on the command line;\n"
            "                      a file others can read is warned about)\n"
            "  --nats-ca FILE, --nats-cert FILE, --nats-key FILE  TLS: the CA to trust,\n"
            "                      and a client certificate with its key\n"
            "  --nats-prefix PREFIX  topic T is subject PREFIX.T (default %s)\n"
            "  --nats-origin NAME  this bus's name in NATS; buses that federate need\n"
            "                      distinct ones (default: HOST_BUS, the host name up to\n"
            "                      its first dot)\n"
            "  --federate PATTERN[,KEY=VALUE...]  share the topics PATTERN (a Redis glob)\n"
            "                      matches, both ways (repeatable). KEYs for topics an\n"
            "                      import creates: mode=lossy|reliable, capacity=N,\n"
            "                      max-msg=SIZE, max-subs=N, stall-timeout=MS (default:\n"
            "                      the bus's defaults)\n"
            "  --export PATTERN    local messages of those topics go out (repeatable)\n"
            "  --import PATTERN[,KEY=VALUE...]  other buses' messages come in (repeatable)\n"
            "  --persist PATTERN   federated topics that go through JetStream, so that\n"
            "                      nothing is lost (repeatable)\n"
            "  --persist-replicas N  stream replicas, 1 to 5 (default 0: 3 if the server\n"
            "                      knows of 3 or more servers, else 1)\n"
            "  --persist-max-age SECONDS  stream age limit (default 0: none; at most\n"
            "                      292 years)\n"
            "  --persist-max-bytes SIZE   stream size limit (default %s)\n"
            "  --persist-window N  JetStream publishes in flight per topic (default %u,\n"
            "                      at most %u)\n",
            d->nats_prefix, bytes, d->persist_window, SBD_PERSIST_WINDOW_MAX);
}

/* Warn when secret file @p path can be read by group or others. */
static void warn_readable(const char *path)
{
    struct stat st;

    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        sbd_log(SBD_WARN,
                "%s holds NATS credentials and is readable by group or others (mode %04o): "
                "chmod 600 it",
                path, (unsigned)(st.st_mode & 07777));
}

/* A --nats-* file: readable now (cnats reads it when it connects). */
static int config_path(const char *path, char *out, size_t cap, int secret)
{
    if (path[0] == '\0' || strlen(path) >= cap) {
        fprintf(stderr, "shmbusd: file name of 1 to %zu bytes expected: '%s'\n", cap - 1, path);
        return -1;
    }
    if (access(path, R_OK) < 0) {
        fprintf(stderr, "shmbusd: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (secret)
        warn_readable(path);
    memcpy(out, path, strlen(path) + 1);
    return 0;
}

/* One URL of --nats: [nats:// or tls://][user-less host][:PORT], no
 * spaces or credentials in it (those come from files). */
static int nats_url_ok(const char *u, size_t len)
{
    const char *host = u, *end = u + len, *colon;
    uint32_t port;
    char num[8];

    if (len >= 7 && strncmp(u, "nats://", 7) == 0)
        host = u + 7;
    else if (len >= 6 && strncmp(u, "tls://", 6) == 0)
        host = u + 6;
    if (host == end || memchr(host, '@', (size_t)(end - host)) != NULL ||
        memchr(host, '/', (size_t)(end - host)) != NULL)
        return 0;
    for (const char *p = u; p < end; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return 0;
    colon = memrchr(host, ':', (size_t)(end - host));
    if (colon == NULL || (host[0] == '[' && end[-1] == ']'))
        return 1; /* no port: cnats's default, 4222 */
    if (colon == host || (size_t)(end - colon - 1) >= sizeof(num) || colon + 1 == end)
        return 0;
    memcpy(num, colon + 1, (size_t)(end - colon - 1));
    num[end - colon - 1] = '\0';
    return sbd_config_number(num, &port) == 0 && port >= 1 && port <= 65535;
}

/* --nats URL[,URL...]. */
static int parse_nats_urls(struct sbd_config *c, const char *arg)
{
    size_t len = strlen(arg);

    if (len == 0 || len > SBD_NATS_URLS_MAX) {
        fprintf(stderr, "shmbusd: --nats: 1 to %u bytes of URLs expected\n", SBD_NATS_URLS_MAX);
        return -1;
    }
    for (const char *p = arg; p <= arg + len;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);

        if (n == 0 || !nats_url_ok(p, n)) {
            fprintf(stderr,
                    "shmbusd: --nats: bad URL '%.*s': nats://HOST[:PORT] or tls://HOST[:PORT], "
                    "comma-separated, credentials only in files (--nats-creds, "
                    "--nats-token-file, --nats-user-file)\n",
                    (int)n, p);
            return -1;
        }
        p += n + 1;
    }
    memcpy(c->nats_urls, arg, len + 1);
    c->nats = 1;
    return 0;
}

/* --nats-user-file: "user:password" on its first line. */
static int read_user(struct sbd_config *c, const char *path)
{
    char line[SBD_TOKEN_MAX + 1];
    char *colon;

    if (sbd_config_token(path, line, sizeof(line)) < 0)
        return -1;
    colon = strchr(line, ':');
    if (colon == NULL || colon == line || colon[1] == '\0') {
        fprintf(stderr, "shmbusd: %s: the first line must be USER:PASSWORD\n", path);
        return -1;
    }
    warn_readable(path);
    *colon = '\0';
    memcpy(c->nats_user, line, strlen(line) + 1);
    memcpy(c->nats_password, colon + 1, strlen(colon + 1) + 1);
    return 0;
}

/* The characters of a topic pattern: a topic name's and the glob's. */
static int pattern_ok(const char *s, size_t len)
{
    if (len == 0 || len > SHMBUS_TOPIC_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._:-*?[]^\\", ch) != NULL))
            return 0;
    }
    return 1;
}

/* One KEY=VALUE of --federate or --import into @p p. @return 0 or -1. */
static int pattern_key(struct sbd_fed_pattern *p, const char *kv, size_t len)
{
    const char *eq = memchr(kv, '=', len);
    char key[16], val[32];
    uint64_t size;
    size_t kl;

    if (eq == NULL || (kl = (size_t)(eq - kv)) >= sizeof(key) || len - kl - 1 >= sizeof(val) ||
        len - kl - 1 == 0)
        return -1;
    memcpy(key, kv, kl);
    key[kl] = '\0';
    memcpy(val, eq + 1, len - kl - 1);
    val[len - kl - 1] = '\0';
    if (strcmp(key, "mode") == 0) {
        if (strcmp(val, "lossy") == 0)
            p->mode = SHMBUS_LOSSY;
        else if (strcmp(val, "reliable") == 0)
            p->mode = SHMBUS_RELIABLE;
        else
            return -1;
        return 0;
    }
    if (strcmp(key, "capacity") == 0)
        return sbd_config_u32(val, &p->capacity);
    if (strcmp(key, "max-subs") == 0)
        return sbd_config_u32(val, &p->max_subscribers);
    if (strcmp(key, "stall-timeout") == 0)
        return sbd_config_number(val, &p->stall_timeout_ms);
    if (strcmp(key, "max-msg") == 0) {
        if (sb_units_size(val, &size) < 0 || size > UINT32_MAX)
            return -1;
        p->max_msg_size = (uint32_t)size;
        return 0;
    }
    return -1;
}

/* --federate, --export, --import or --persist: PATTERN[,KEY=VALUE...]
 * (KEYs for the first and third only). */
static int parse_pattern(struct sbd_config *c, uint32_t kind, const char *opt, const char *arg)
{
    struct sbd_fed_pattern *p = &c->fed[c->n_fed];
    const char *comma = strchr(arg, ',');
    size_t gl = comma != NULL ? (size_t)(comma - arg) : strlen(arg);
    int keys = kind == SBD_FED_FEDERATE || kind == SBD_FED_IMPORT;

    if (c->n_fed == SBD_FED_PATTERNS_MAX) {
        fprintf(stderr, "shmbusd: at most %u --federate, --export, --import and --persist\n",
                SBD_FED_PATTERNS_MAX);
        return -1;
    }
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    if (!pattern_ok(arg, gl)) {
        fprintf(stderr,
                "shmbusd: %s '%.*s': a pattern of 1 to %u characters: topic name characters "
                "and the glob's * ? [ ] ^ \\\n",
                opt, (int)gl, arg, SHMBUS_TOPIC_NAME_MAX);
        return -1;
    }
    memcpy(p->glob, arg, gl);
    p->glob[gl] = '\0';
    while (comma != NULL) {
        const char *kv = comma + 1;
        size_t kl;

        comma = strchr(kv, ',');
        kl = comma != NULL ? (size_t)(comma - kv) : strlen(kv);
        if (!keys || pattern_key(p, kv, kl) < 0) {
            fprintf(stderr, "shmbusd: %s %s: bad option '%.*s'%s\n", opt, p->glob, (int)kl, kv,
                    keys ? ": mode=lossy|reliable, capacity=N, max-msg=SIZE, max-subs=N, "
                           "stall-timeout=MS"
                         : ": it takes a pattern only");
            return -1;
        }
    }
    if (keys) {
        /* The options a topic an import creates gets: in bounds now,
         * rather than refused at each message. */
        shmbus_topic_opts o = {.mode = p->mode,
                               .capacity = p->capacity,
                               .max_msg_size = p->max_msg_size,
                               .max_subscribers = p->max_subscribers,
                               .stall_timeout_ms = p->stall_timeout_ms},
                          eff;
        uint64_t size;

        if (sb_admin_plan(&o, &eff, &size) < 0) {
            fprintf(stderr,
                    "shmbusd: %s %s: capacity is a power of two %u..2^%u, max-msg 1..%u MiB, "
                    "max-subs 1..%u\n",
                    opt, p->glob, SB_ADMIN_CAPACITY_MIN, SB_ADMIN_CAPACITY_BITS,
                    SB_ADMIN_MSG_MAX >> 20, SB_ADMIN_SUBS_MAX);
            return -1;
        }
    }
    c->n_fed++;
    return 0;
}

/* One --nats*, pattern or --persist* option. @return 0 or -1 (said). */
int sbd_config_nats_option(struct sbd_config *c, int opt, const char *arg)
{
    static const char *const pat_opt[] = {"--federate", "--export", "--import", "--persist"};
    int bad = 0;

    switch (opt) {
    case SBD_OPT_NATS:
        return parse_nats_urls(c, arg);
    case SBD_OPT_NCREDS:
        return config_path(arg, c->nats_creds, sizeof(c->nats_creds), 1);
    case SBD_OPT_NCA:
        return config_path(arg, c->nats_ca, sizeof(c->nats_ca), 0);
    case SBD_OPT_NCERT:
        return config_path(arg, c->nats_cert, sizeof(c->nats_cert), 0);
    case SBD_OPT_NKEY:
        return config_path(arg, c->nats_key, sizeof(c->nats_key), 1);
    case SBD_OPT_NTOKEN:
        if (sbd_config_token(arg, c->nats_token, sizeof(c->nats_token)) < 0)
            return -1;
        warn_readable(arg);
        return 0;
    case SBD_OPT_NUSER:
        return read_user(c, arg);
    case SBD_OPT_NPREFIX:
    case SBD_OPT_NORIGIN:
        if (opt == SBD_OPT_NPREFIX ? !sbd_fed_prefix_ok(arg) : !sbd_fed_origin_ok(arg)) {
            fprintf(stderr, "shmbusd: %s '%s': 1 to %u characters of A-Z a-z 0-9 _ -%s\n",
                    opt == SBD_OPT_NPREFIX ? "--nats-prefix" : "--nats-origin", arg,
                    SBD_NATS_NAME_MAX,
                    opt == SBD_OPT_NPREFIX ? ", in tokens separated by single dots" : "");
            return -1;
        }
        snprintf(opt == SBD_OPT_NPREFIX ? c->nats_prefix : c->nats_origin, SBD_NATS_NAME_MAX + 1,
                 "%s", arg);
        return 0;
    case SBD_OPT_FEDERATE:
    case SBD_OPT_EXPORT:
    case SBD_OPT_IMPORT:
    case SBD_OPT_PERSIST:
        return parse_pattern(c, (uint32_t)(opt - SBD_OPT_FEDERATE), pat_opt[opt - SBD_OPT_FEDERATE],
                             arg);
    case SBD_OPT_PREPLICAS:
        bad = sbd_config_number(arg, &c->persist_replicas) || c->persist_replicas > 5;
        if (bad)
            fprintf(stderr, "shmbusd: --persist-replicas '%s': 0 (from the cluster) to 5\n", arg);
        break;
    case SBD_OPT_PAGE:
        /* JetStream takes the age in ns, an int64. */
        bad = sb_units_u64(arg, 0, SBD_PERSIST_MAX_AGE_S, &c->persist_max_age_s);
        if (bad)
            fprintf(stderr, "shmbusd: --persist-max-age '%s': seconds, 0 (no limit) to %llu\n", arg,
                    (unsigned long long)SBD_PERSIST_MAX_AGE_S);
        break;
    case SBD_OPT_PBYTES:
        bad = sb_units_size(arg, &c->persist_max_bytes) || c->persist_max_bytes > INT64_MAX;
        if (bad)
            fprintf(stderr, "shmbusd: --persist-max-bytes '%s': a SIZE above 0 (K, M, G)\n", arg);
        break;
    default: /* SBD_OPT_PWINDOW */
        bad = sbd_config_u32(arg, &c->persist_window) || c->persist_window > SBD_PERSIST_WINDOW_MAX;
        if (bad)
            fprintf(stderr, "shmbusd: --persist-window '%s': 1 to %u\n", arg,
                    SBD_PERSIST_WINDOW_MAX);
        break;
    }
    return bad ? -1 : 0;
}

/* After the options: what federation options need, and the default
 * origin. @return 0 or -1 (said). */
int sbd_config_nats_finish(struct sbd_config *c)
{
    char host[256];

    if (!c->nats) {
        /* Any option of federation's that changed a value (one given its
         * default changes nothing, and is let pass). */
        if (c->n_fed > 0 || c->nats_creds[0] != '\0' || c->nats_token[0] != '\0' ||
            c->nats_user[0] != '\0' || c->nats_ca[0] != '\0' || c->nats_cert[0] != '\0' ||
            c->nats_key[0] != '\0' || c->nats_origin[0] != '\0' ||
            strcmp(c->nats_prefix, SBD_NATS_PREFIX_DEFAULT) != 0 || c->persist_replicas != 0 ||
            c->persist_max_age_s != 0 || c->persist_max_bytes != SBD_PERSIST_MAX_BYTES_DEFAULT ||
            c->persist_window != SBD_PERSIST_WINDOW_DEFAULT) {
            fprintf(stderr, "shmbusd: --federate, --export, --import, --persist, --persist-* and "
                            "the --nats-* options need --nats URL\n");
            return -1;
        }
        return 0;
    }
    if ((c->nats_creds[0] != '\0') + (c->nats_token[0] != '\0') + (c->nats_user[0] != '\0') > 1) {
        fprintf(stderr, "shmbusd: one of --nats-creds, --nats-token-file, --nats-user-file\n");
        return -1;
    }
    if ((c->nats_cert[0] != '\0') != (c->nats_key[0] != '\0')) {
        fprintf(stderr, "shmbusd: --nats-cert and --nats-key go together\n");
        return -1;
    }
    if (c->nats_origin[0] == '\0') {
        if (gethostname(host, sizeof(host)) < 0)
            host[0] = '\0';
        host[sizeof(host) - 1] = '\0';
        sbd_fed_default_origin(host, c->bus, c->nats_origin);
    }
    return 0;
}
