/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd's configuration (config.h): the defaults, the command line's
 * options, their parsing and checks, and the usage text.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "config.h"
#include "config_int.h"

#include "bridge/bridge.h"
#include "log.h"

void sbd_config_defaults(struct sbd_config *c)
{
    struct statvfs fs;

    memset(c, 0, sizeof(*c));
    c->bus_exclusive = 1;
    c->max_topics = 4096;
    c->max_clients = 1024;
    c->max_slots = 1024;
    c->max_segment = 1ull << 30;
    c->max_shm = 1ull << 32;
    c->reap_interval_ms = 20;
    c->bridge_max_conns = 16384;
    c->bridge_max_subs = 1024;
    c->bridge_max_request = 4ull << 20;
    c->bridge_max_output = 32ull << 20;
    c->bridge_max_memory = 1ull << 30;
    c->bridge_max_sub_memory = 16ull << 20;
    c->bridge_auth_ms = 10000;
    c->bridge_cmd_ms = 10000;
    c->bridge_pub_timeout_ms = 5000;
    snprintf(c->nats_prefix, sizeof(c->nats_prefix), "%s", SBD_NATS_PREFIX_DEFAULT);
    c->persist_max_bytes = SBD_PERSIST_MAX_BYTES_DEFAULT;
    c->persist_window = SBD_PERSIST_WINDOW_DEFAULT;
    c->journal_sync = SBD_REC_SYNC_DEFAULT;
    c->metrics_max_slots = SBD_METRICS_MAX_SLOTS_DEFAULT;
    if (statvfs("/dev/shm", &fs) == 0 && fs.f_blocks > 0)
        c->max_shm = (uint64_t)fs.f_blocks * fs.f_frsize / 2;
}

void sbd_config_size_text(uint64_t v, char out[SBD_SIZE_TEXT])
{
    const char *units = "GMK";
    unsigned shift = 30;

    for (const char *u = units; *u != '\0'; u++, shift -= 10) {
        if (v != 0 && v % (1ull << shift) == 0) {
            snprintf(out, SBD_SIZE_TEXT, "%llu%c", (unsigned long long)(v >> shift), *u);
            return;
        }
    }
    snprintf(out, SBD_SIZE_TEXT, "%llu", (unsigned long long)v);
}

/* The usage text's defaults come from sbd_config_defaults(), so that the
 * two never disagree. */
void sbd_config_usage(FILE *f)
{
    struct sbd_config d;
    char seg[SBD_SIZE_TEXT], req[SBD_SIZE_TEXT], out[SBD_SIZE_TEXT], mem[SBD_SIZE_TEXT],
        submem[SBD_SIZE_TEXT];

    sbd_config_defaults(&d);
    sbd_config_size_text(d.max_segment, seg);
    sbd_config_size_text(d.bridge_max_request, req);
    sbd_config_size_text(d.bridge_max_output, out);
    sbd_config_size_text(d.bridge_max_memory, mem);
    sbd_config_size_text(d.bridge_max_sub_memory, submem);
    fprintf(f,
            "usage: shmbusd [options]\n"
            "Registry daemon of a shmbus bus: creates topics, hands them to clients,\n"
            "tracks who is attached. Publishing and receiving never go through it.\n"
            "\n"
            "  --bus NAME          bus to serve (default: $SHMBUS_BUS, else \"" SHMBUS_BUS_DEFAULT
            "\");\n"
            "                      socket and lock in DIR/NAME.sock and DIR/NAME.lock,\n"
            "                      DIR: $SHMBUS_RUNTIME_DIR, else $XDG_RUNTIME_DIR/shmbus,\n"
            "                      else " SHMBUS_RUNTIME_DIR_SYSTEM
            " (created if missing; an existing one\n"
            "                      must be ours and writable by nobody else, and is\n"
            "                      kept as it is; a new one is made 0700, 0710 with\n"
            "                      --group, 0711 with --allow-*)\n"
            "  --socket PATH       control socket at PATH (absolute) instead, lock beside\n"
            "                      it (NAME.lock for NAME.sock); default $SHMBUS_SOCKET,\n"
            "                      else DIR/NAME.sock above. The directory is checked and\n"
            "                      made as DIR is; the bus lock in /dev/shm stays, so\n"
            "                      one daemon of a uid serves a bus whatever its socket\n"
            "  --foreground        stay in the terminal (default: detach once listening)\n"
            "  --log-level LEVEL   error, warn, info (default) or debug; logs go to stderr\n"
            "  --group GROUP       segments and socket belong to GROUP, mode 0660 (the\n"
            "                      runtime directory it creates too, 0710); a daemon\n"
            "                      not run as root must be a member of GROUP\n"
            "  --allow-uid UID     also accept clients of this uid or user name (repeatable;\n"
            "                      the bridge refuses the kernel's overflow uid, usually\n"
            "                      nobody, without a token)\n"
            "  --allow-gid GID     also accept clients whose group is GID or name (repeatable)\n"
            "  --max-topics N      topics on the bus (default %u)\n"
            "  --max-clients N     connected clients (default %u); other uids than\n"
            "                      the daemon's share all but the last quarter\n"
            "  --max-slots N       subscriber slots a topic may ask for (default %u)\n"
            "  --max-segment SIZE  bytes of one topic segment (default %s; K, M, G suffixes)\n"
            "  --max-shm SIZE      bytes of all segments (default: half of /dev/shm)\n"
            "  --reap-interval MS  scan segments for dead owners, and retry dead\n"
            "                      publishers' claims, every MS ms (default %u; a dead\n"
            "                      publisher's claim is ended within about 5 of these);\n"
            "                      a scan runs in 1 ms slices between control calls, at\n"
            "                      most a tenth of a core (a death runs one round at\n"
            "                      once), and takes longer than MS on a large bus\n"
            "  --stop-clean        on SIGTERM or SIGINT remove every topic: publishing,\n"
            "                      receiving and polling then fail with\n"
            "                      SHMBUS_ERR_TOPIC_GONE in every process. Default: remove\n"
            "                      only topics no live process uses, and keep the others\n"
            "                      for the next shmbusd to take over\n",
            d.max_topics, d.max_clients, d.max_slots, seg, d.reap_interval_ms);
    /* Two strings: C11 compilers need not take a literal over 4095 bytes. */
    fprintf(f,
            "  --bridge [ADDR]:PORT  serve remote clients over TCP: JSON lines and the\n"
            "                      Redis protocol (ADDR defaults to " SBD_BRIDGE_HOST_DEFAULT
            "; [::1]:PORT\n"
            "                      for IPv6). Off unless given. Without a token, only\n"
            "                      loopback peers the bus allows get in: the daemon's\n"
            "                      uid, --allow-uid, and the members of --group or an\n"
            "                      --allow-gid (by the user database's groups)\n"
            "  --bridge-no-create  a remote publish on a topic that does not exist is\n"
            "                      an error (default: it creates it, lossy, as\n"
            "                      `shmbus pub` does)\n"
            "  --bridge-token-file FILE  every remote client, local or not, must AUTH\n"
            "                      with the token in FILE (its first line; default:\n"
            "                      $SHMBUS_BRIDGE_TOKEN if set)\n"
            "  --bridge-max-conns N     remote connections (default %u)\n"
            "  --bridge-max-subs N      channels and patterns per connection (default %u)\n"
            "  --bridge-max-request SIZE  one command, line or payload (default %s)\n"
            "  --bridge-max-output SIZE   output buffered for one slow client before it\n"
            "                      is disconnected (default %s)\n"
            "  --bridge-max-memory SIZE   memory of all connections together: input,\n"
            "                      output, subscriptions; when full, the connection\n"
            "                      that holds the most is disconnected (default %s)\n"
            "  --bridge-max-sub-memory SIZE  subscriptions of one connection: its\n"
            "                      channels, patterns and the topics they match\n"
            "                      (default %s: about 200000 topics)\n"
            "  --bridge-auth-timeout MS   time to AUTH before the connection is closed\n"
            "                      (with a token), or for a refused peer to send its\n"
            "                      first command and be told why (default %u,\n"
            "                      at least %u)\n"
            "  --bridge-cmd-timeout MS    a command not complete this long after its\n"
            "                      first byte closes the connection, token or not;\n"
            "                      idle connections stay (default %u, at least\n"
            "                      %u)\n"
            "  --bridge-pub-timeout MS    a remote publish into a full reliable topic\n"
            "                      waits this long, reading nothing more from that\n"
            "                      client, then gets an error (default %u)\n"
            "  --help              this text\n"
            "  --version           print the versions of shmbusd and libshmbus\n",
            d.bridge_max_conns, d.bridge_max_subs, req, out, mem, submem, d.bridge_auth_ms,
            SBD_BRIDGE_TIMEOUT_MIN_MS, d.bridge_cmd_ms, SBD_BRIDGE_TIMEOUT_MIN_MS,
            d.bridge_pub_timeout_ms);
    sbd_config_nats_usage(f, &d);
    sbd_config_rec_usage(f);
    sbd_config_metrics_usage(f, &d);
}

int sbd_config_u32(const char *s, uint32_t *out)
{
    uint64_t v;

    if (sb_units_u64(s, 1, UINT32_MAX, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A bridge timeout of @p opt in ms, at least SBD_BRIDGE_TIMEOUT_MIN_MS
 * (said on stderr if not). @return 0 or -1. */
static int parse_timeout(const char *s, const char *opt, uint32_t *out)
{
    if (sbd_config_u32(s, out) < 0)
        return -1;
    if (*out >= SBD_BRIDGE_TIMEOUT_MIN_MS)
        return 0;
    fprintf(stderr, "shmbusd: %s %s: at least %u ms\n", opt, s, SBD_BRIDGE_TIMEOUT_MIN_MS);
    return -1;
}

/* A number, including 0 (which sbd_config_u32() refuses as a size). */
int sbd_config_number(const char *s, uint32_t *out)
{
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    return sbd_config_u32(s, out);
}

int sbd_config_listen(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(s, ':');
    size_t alen;
    uint32_t num;

    if (colon == NULL || sbd_config_number(colon + 1, &num) < 0 || num > 65535)
        return -1;
    alen = (size_t)(colon - s);
    if (alen >= 2 && s[0] == '[' && s[alen - 1] == ']') {
        s++;
        alen -= 2;
    }
    if (alen >= hcap)
        return -1;
    if (alen == 0)
        snprintf(host, hcap, SBD_BRIDGE_HOST_DEFAULT);
    else
        snprintf(host, hcap, "%.*s", (int)alen, s);
    snprintf(port, pcap, "%u", num);
    return 0;
}

/* The bridge token: the first line of @p path, which must not be empty.
 * Tokens stay out of the command line, where ps shows them. */
int sbd_config_token(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    char line[SBD_TOKEN_MAX + 2];
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "shmbusd: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    n = strcspn(line, "\r\n");
    if (n == 0 || n >= cap || (line[n] == '\0' && strlen(line) == sizeof(line) - 1)) {
        fprintf(stderr, "shmbusd: %s: the first line must hold a token of 1 to %d bytes\n", path,
                SBD_TOKEN_MAX);
        return -1;
    }
    memcpy(out, line, n);
    out[n] = '\0';
    return 0;
}

/* A user name or number. */
static int parse_uid(const char *s, uid_t *out)
{
    struct passwd *pw = getpwnam(s);
    uint32_t v;

    if (pw != NULL)
        v = pw->pw_uid;
    else if (sbd_config_number(s, &v) < 0)
        return -1;
    *out = (uid_t)v;
    return 0;
}

/* A group name or number. */
static int parse_gid(const char *s, gid_t *out)
{
    struct group *gr = getgrnam(s);
    uint32_t v;

    if (gr != NULL)
        v = gr->gr_gid;
    else if (sbd_config_number(s, &v) < 0)
        return -1;
    *out = (gid_t)v;
    return 0;
}

/* Bounds of the options' values, beyond "a positive number". */
#define CONFIG_REAP_INTERVAL_MAX_MS 1000u   /* --reap-interval */
#define CONFIG_REQUEST_MIN          1024ull /* --bridge-max-request */
#define CONFIG_REQUEST_MAX          (1ull << 30)
#define CONFIG_OUTPUT_MIN           4096ull      /* --bridge-max-output */
#define CONFIG_MEMORY_MIN           (1ull << 20) /* --bridge-max-memory */
#define CONFIG_SUB_MEMORY_MIN       4096ull      /* --bridge-max-sub-memory */

enum {
    OPT_BUS = 256,
    OPT_FG,
    OPT_SOCKET,
    OPT_LOG,
    OPT_GROUP,
    OPT_AUID,
    OPT_AGID,
    OPT_TOPICS,
    OPT_CLIENTS,
    OPT_SLOTS,
    OPT_SEG,
    OPT_SHM,
    OPT_REAP,
    OPT_STOP_CLEAN,
    OPT_BRIDGE, /* OPT_BRIDGE to OPT_BPUB: config_bridge_option() */
    OPT_BTOKEN,
    OPT_BCONNS,
    OPT_BSUBS,
    OPT_BREQ,
    OPT_BOUT,
    OPT_BMEM,
    OPT_BSUBMEM,
    OPT_BNOCREATE,
    OPT_BAUTH,
    OPT_BCMD,
    OPT_BPUB,
    OPT_HELP,
    OPT_VERSION
};

static const struct option long_opts[] = {
    {"bus", required_argument, NULL, OPT_BUS},
    {"foreground", no_argument, NULL, OPT_FG},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"log-level", required_argument, NULL, OPT_LOG},
    {"group", required_argument, NULL, OPT_GROUP},
    {"allow-uid", required_argument, NULL, OPT_AUID},
    {"allow-gid", required_argument, NULL, OPT_AGID},
    {"max-topics", required_argument, NULL, OPT_TOPICS},
    {"max-clients", required_argument, NULL, OPT_CLIENTS},
    {"max-slots", required_argument, NULL, OPT_SLOTS},
    {"max-segment", required_argument, NULL, OPT_SEG},
    {"max-shm", required_argument, NULL, OPT_SHM},
    {"reap-interval", required_argument, NULL, OPT_REAP},
    {"stop-clean", no_argument, NULL, OPT_STOP_CLEAN},
    {"bridge", required_argument, NULL, OPT_BRIDGE},
    {"bridge-token-file", required_argument, NULL, OPT_BTOKEN},
    {"bridge-max-conns", required_argument, NULL, OPT_BCONNS},
    {"bridge-max-subs", required_argument, NULL, OPT_BSUBS},
    {"bridge-max-request", required_argument, NULL, OPT_BREQ},
    {"bridge-max-output", required_argument, NULL, OPT_BOUT},
    {"bridge-max-memory", required_argument, NULL, OPT_BMEM},
    {"bridge-max-sub-memory", required_argument, NULL, OPT_BSUBMEM},
    {"bridge-no-create", no_argument, NULL, OPT_BNOCREATE},
    {"bridge-auth-timeout", required_argument, NULL, OPT_BAUTH},
    {"bridge-cmd-timeout", required_argument, NULL, OPT_BCMD},
    {"bridge-pub-timeout", required_argument, NULL, OPT_BPUB},
    /* clang-format off: a macro of entries, each with its comma */
    SBD_CONFIG_NATS_OPTIONS SBD_CONFIG_REC_OPTIONS SBD_CONFIG_METRICS_OPTIONS
    /* clang-format on */
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

/* One of the limit options. @return non-zero if its value is bad. */
static int config_limit_option(struct sbd_config *c, int opt, const char *arg)
{
    switch (opt) {
    case OPT_TOPICS:
        return sbd_config_u32(arg, &c->max_topics);
    case OPT_CLIENTS:
        return sbd_config_u32(arg, &c->max_clients);
    case OPT_SLOTS:
        return sbd_config_u32(arg, &c->max_slots);
    case OPT_SEG:
        return sb_units_size(arg, &c->max_segment);
    case OPT_SHM:
        return sb_units_size(arg, &c->max_shm);
    default: /* OPT_REAP */
        return sbd_config_u32(arg, &c->reap_interval_ms) ||
               c->reap_interval_ms > CONFIG_REAP_INTERVAL_MAX_MS;
    }
}

/* One --bridge* option. @return non-zero if its value is bad. */
static int config_bridge_option(struct sbd_config *c, int opt, const char *arg)
{
    int bad = 0;

    switch (opt) {
    case OPT_BRIDGE:
        bad = sbd_config_listen(arg, c->bridge_host, sizeof(c->bridge_host), c->bridge_port,
                                sizeof(c->bridge_port));
        c->bridge = !bad;
        break;
    case OPT_BTOKEN:
        bad = sbd_config_token(arg, c->bridge_token, sizeof(c->bridge_token));
        break;
    case OPT_BCONNS:
        bad = sbd_config_u32(arg, &c->bridge_max_conns) || c->bridge_max_conns == 0;
        break;
    case OPT_BSUBS:
        bad = sbd_config_u32(arg, &c->bridge_max_subs) || c->bridge_max_subs == 0 ||
              c->bridge_max_subs > SBD_BRIDGE_SUBS_MAX;
        break;
    case OPT_BREQ:
        bad = sb_units_size(arg, &c->bridge_max_request) ||
              c->bridge_max_request < CONFIG_REQUEST_MIN ||
              c->bridge_max_request > CONFIG_REQUEST_MAX;
        break;
    case OPT_BOUT:
        bad = sb_units_size(arg, &c->bridge_max_output) || c->bridge_max_output < CONFIG_OUTPUT_MIN;
        break;
    case OPT_BNOCREATE:
        c->bridge_no_create = 1;
        break;
    case OPT_BMEM:
        bad = sb_units_size(arg, &c->bridge_max_memory) || c->bridge_max_memory < CONFIG_MEMORY_MIN;
        break;
    case OPT_BSUBMEM:
        bad = sb_units_size(arg, &c->bridge_max_sub_memory) ||
              c->bridge_max_sub_memory < CONFIG_SUB_MEMORY_MIN;
        break;
    case OPT_BAUTH:
        bad = parse_timeout(arg, "--bridge-auth-timeout", &c->bridge_auth_ms);
        break;
    case OPT_BCMD:
        bad = parse_timeout(arg, "--bridge-cmd-timeout", &c->bridge_cmd_ms);
        break;
    case OPT_BPUB:
        bad = sbd_config_number(arg, &c->bridge_pub_timeout_ms);
        break;
    default:
        break;
    }
    return bad;
}

/* Is @p path fit for the control socket: absolute (a daemon and its
 * clients agree on it whatever their cwd), naming a file, within
 * sockaddr_un's sun_path? @return 0, or -1 with a message printed. */
static int config_socket_path(const char *path)
{
    size_t n = strlen(path);

    if (n > 0 && path[0] == '/' && path[n - 1] != '/' &&
        n < sizeof(((struct sockaddr_un *)0)->sun_path))
        return 0;
    fprintf(stderr,
            "shmbusd: socket path '%s': must be absolute, name a file (not end in '/') "
            "and hold at most %zu bytes\n",
            path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    return -1;
}

/* Where the socket goes: --socket (already in c->sock_path), else as
 * clients resolve it ($SHMBUS_SOCKET, else the runtime directory rules);
 * its directory, and the lock beside it: NAME.lock for NAME.sock, else the
 * socket's path and ".lock". @return 0, or -1 with a message printed. */
static int config_paths(struct sbd_config *c, const char *bus)
{
    int explicit = c->sock_path[0] != '\0', rc;
    size_t n;

    rc = explicit ? shmbus_bus_resolve(bus, c->bus, NULL, 0)
                  : shmbus_bus_resolve(bus, c->bus, c->sock_path, sizeof(c->sock_path));
    if (rc < 0) {
        if (!explicit && rc != SHMBUS_ERR_BAD_NAME && getenv("SHMBUS_SOCKET") != NULL &&
            getenv("SHMBUS_SOCKET")[0] != '\0')
            return config_socket_path(getenv("SHMBUS_SOCKET"));
        fprintf(stderr, "shmbusd: bus name or socket path: %s\n", shmbus_strerror(rc));
        return -1;
    }
    n = (size_t)(strrchr(c->sock_path, '/') - c->sock_path);
    snprintf(c->run_dir, sizeof(c->run_dir), "%.*s", n > 0 ? (int)n : 1, c->sock_path);
    n = strlen(c->sock_path);
    if (n > strlen(".sock") && strcmp(c->sock_path + n - strlen(".sock"), ".sock") == 0)
        n -= strlen(".sock");
    snprintf(c->lock_path, sizeof(c->lock_path), "%.*s.lock", (int)n, c->sock_path);
    snprintf(c->shm_lock_path, sizeof(c->shm_lock_path), "/dev/shm/shmbus-%s.lock", c->bus);
    return 0;
}

/* One option. @return 0, 1 for --help, 2 for --version, or -1 with a message printed. */
static int config_option(struct sbd_config *c, int opt, const char *arg, const char **bus)
{
    enum sbd_level level;
    int bad = 0;

    switch (opt) {
    case OPT_BUS:
        *bus = arg;
        break;
    case OPT_FG:
        c->foreground = 1;
        break;
    case OPT_SOCKET:
        bad = config_socket_path(arg) < 0;
        if (!bad)
            memcpy(c->sock_path, arg, strlen(arg) + 1);
        break;
    case OPT_STOP_CLEAN:
        c->stop_clean = 1;
        break;
    case OPT_LOG:
        bad = sbd_log_parse_level(arg, &level);
        if (!bad)
            sbd_log_set_level(level);
        break;
    case OPT_GROUP:
        bad = parse_gid(arg, &c->group);
        c->have_group = !bad;
        break;
    case OPT_AUID:
        bad = c->n_allow_uid == SBD_ALLOW_MAX || parse_uid(arg, &c->allow_uid[c->n_allow_uid]);
        c->n_allow_uid += !bad;
        break;
    case OPT_AGID:
        bad = c->n_allow_gid == SBD_ALLOW_MAX || parse_gid(arg, &c->allow_gid[c->n_allow_gid]);
        c->n_allow_gid += !bad;
        break;
    case OPT_TOPICS:
    case OPT_CLIENTS:
    case OPT_SLOTS:
    case OPT_SEG:
    case OPT_SHM:
    case OPT_REAP:
        bad = config_limit_option(c, opt, arg);
        break;
    case OPT_HELP:
        return 1;
    case OPT_VERSION:
        return 2;
    default:
        if (opt >= SBD_OPT_NATS && opt <= SBD_OPT_PWINDOW)
            return sbd_config_nats_option(c, opt, arg);
        if (opt >= SBD_OPT_RECORD && opt <= SBD_OPT_JSYNC)
            return sbd_config_rec_option(c, opt, arg);
        if (opt >= SBD_OPT_METRICS && opt <= SBD_OPT_MSLOTS)
            return sbd_config_metrics_option(c, opt, arg);
        if (opt < OPT_BRIDGE || opt > OPT_BPUB)
            return -1;
        bad = config_bridge_option(c, opt, arg);
    }
    if (bad)
        fprintf(stderr, "shmbusd: bad value '%s' (see --help)\n", arg);
    return bad ? -1 : 0;
}

int sbd_config_parse(struct sbd_config *c, int argc, char **argv)
{
    const char *bus = NULL;
    int opt, rc;

    sbd_config_defaults(c);
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        rc = config_option(c, opt, optarg, &bus);
        if (rc != 0)
            return rc;
    }
    if (c->bridge_token[0] == '\0' && getenv("SHMBUS_BRIDGE_TOKEN") != NULL) {
        const char *env = getenv("SHMBUS_BRIDGE_TOKEN");

        if (env[0] == '\0' || strlen(env) > SBD_TOKEN_MAX) {
            fprintf(stderr, "shmbusd: $SHMBUS_BRIDGE_TOKEN must hold 1 to %d bytes\n",
                    SBD_TOKEN_MAX);
            return -1;
        }
        memcpy(c->bridge_token, env, strlen(env) + 1);
    }
    if (optind < argc) {
        fprintf(stderr, "shmbusd: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (config_paths(c, bus) < 0)
        return -1;
    if (sbd_config_nats_finish(c) < 0)
        return -1;
    return sbd_config_rec_finish(c);
}
