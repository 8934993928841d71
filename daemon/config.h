/* SPDX-License-Identifier: Apache-2.0 */
/* shmbusd configuration: the bus, access rules and limits, read from the
 * command line by sbd_config_parse() on top of sbd_config_defaults(). */
#ifndef SHMBUSD_CONFIG_H
#define SHMBUSD_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/un.h>

#include "shmbus/shmbus.h"

#define SBD_ALLOW_MAX 16
/* Longest bridge AUTH token. */
#define SBD_TOKEN_MAX 256

/* The shortest --bridge-auth-timeout and --bridge-cmd-timeout: the
 * bridge checks them every quarter of the shorter one, walking every
 * connection, and a shorter tick would cost the I/O thread more than the
 * deadline is worth. */
#define SBD_BRIDGE_TIMEOUT_MIN_MS 100u

/* --bridge's address when it names only a port: loopback. */
#define SBD_BRIDGE_HOST_DEFAULT "127.0.0.1"

/* --metrics-max-slots's default: slot series per topic. */
#define SBD_METRICS_MAX_SLOTS_DEFAULT 64u

/* Federation (fed/fed.h). Pattern options (--federate, --export,
 * --import, --persist) together; longest --nats URL list; longest path of
 * a --nats-* file; longest --nats-prefix and --nats-origin. */
#define SBD_FED_PATTERNS_MAX          64
#define SBD_NATS_URLS_MAX             1024
#define SBD_PATH_MAX                  1024
#define SBD_NATS_NAME_MAX             63
#define SBD_NATS_PREFIX_DEFAULT       "shmbus"
#define SBD_PERSIST_MAX_BYTES_DEFAULT (1ull << 30)
#define SBD_PERSIST_WINDOW_DEFAULT    256u
/* --persist-window's largest value. */
#define SBD_PERSIST_WINDOW_MAX 65536u
/* --persist-max-age's largest value: JetStream takes it in ns, an int64
 * (about 292 years). */
#define SBD_PERSIST_MAX_AGE_S (INT64_MAX / 1000000000ull)

/* Recording (rec/rec.h): --record patterns; the default sync policy
 * (docs/journal.md "Recording"). The values' bounds are util/units.h's. */
#define SBD_REC_PATTERNS_MAX 64
#define SBD_REC_SYNC_DEFAULT 2u /* SHMBUS_JOURNAL_SYNC_BATCH */
/* Descriptors a recorded topic's journal writer holds: the topic's
 * directory, its lock file, the segment file written and its index. */
#define SBD_REC_FDS_PER_TOPIC 4u

/* What a pattern option makes of the topics its glob matches. */
enum sbd_fed_kind {
    SBD_FED_FEDERATE = 0, /* --federate: export and import */
    SBD_FED_EXPORT,       /* --export */
    SBD_FED_IMPORT,       /* --import */
    SBD_FED_PERSIST       /* --persist: through JetStream */
};

/* One pattern option. The creation options (--federate and --import's
 * KEY=VALUE) apply to topics an import creates on its first message; 0 is
 * the bus's default. */
struct sbd_fed_pattern {
    uint32_t kind; /* enum sbd_fed_kind */
    uint32_t mode; /* enum shmbus_mode, or 0 */
    uint32_t capacity;
    uint32_t max_msg_size;
    uint32_t max_subscribers;
    uint32_t stall_timeout_ms;
    char glob[SHMBUS_TOPIC_NAME_MAX + 1]; /* Redis-style glob (glob.h) */
};

struct sbd_config {
    char bus[SHMBUS_BUS_NAME_MAX + 1];
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char run_dir[sizeof(((struct sockaddr_un *)0)->sun_path)];       /* the socket's directory */
    char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8]; /* in run_dir */
    char shm_lock_path[SHMBUS_BUS_NAME_MAX + 32];                    /* in /dev/shm */
    int foreground;
    /* Access: peers of our uid, plus these uids and groups. */
    uid_t allow_uid[SBD_ALLOW_MAX];
    gid_t allow_gid[SBD_ALLOW_MAX];
    unsigned n_allow_uid, n_allow_gid;
    int have_group; /* segments and socket go to this group, mode 0660 */
    /* The bus-wide /dev/shm lock is ours (sbd_bus_lock(); 1 by default):
     * without it a daemon of another uid may serve the bus, and a root
     * daemon leaves other uids' segments alone (adopt.c). */
    int bus_exclusive;
    gid_t group;
    /* Limits. */
    uint32_t max_topics;
    uint32_t max_clients;
    uint32_t max_slots; /* subscriber slots per topic (max_subscribers option) */
    uint64_t max_segment;
    uint64_t max_shm;          /* all segments together */
    uint32_t reap_interval_ms; /* scan for dead owners and retry dead claims */
    int stop_clean;            /* a stop removes every topic, used or not */
    /* The TCP bridge (bridge/bridge.h): off unless --bridge is given. */
    int bridge;
    char bridge_host[64]; /* numeric IPv4 or IPv6 address */
    char bridge_port[8];
    char bridge_token[SBD_TOKEN_MAX + 1]; /* "" = no AUTH needed */
    uint32_t bridge_max_conns;
    uint32_t bridge_max_subs;       /* channels and patterns per connection */
    uint64_t bridge_max_request;    /* one JSON line or RESP command, bytes */
    uint64_t bridge_max_output;     /* buffered output per connection, bytes */
    uint64_t bridge_max_memory;     /* all connections: buffers, subscriptions (bridge/mem.h) */
    uint64_t bridge_max_sub_memory; /* subscriptions and their links, per connection */
    uint32_t bridge_auth_ms;        /* time to AUTH before the connection is closed */
    uint32_t bridge_cmd_ms;         /* time from a command's first byte to its end */
    uint32_t bridge_pub_timeout_ms; /* reliable back-pressure before an error reply */
    int bridge_no_create;           /* remote publishes never create topics */
    /* Federation (fed/fed.h): off unless --nats is given. Secrets only
     * in files, read when the link starts. */
    int nats;
    char nats_urls[SBD_NATS_URLS_MAX + 1]; /* comma-separated */
    char nats_creds[SBD_PATH_MAX + 1];     /* "" = none, as the next four */
    char nats_ca[SBD_PATH_MAX + 1];
    char nats_cert[SBD_PATH_MAX + 1];
    char nats_key[SBD_PATH_MAX + 1];
    /* Read from --nats-token-file and --nats-user-file ("" = none). */
    char nats_token[SBD_TOKEN_MAX + 1];
    char nats_user[SBD_TOKEN_MAX + 1];
    char nats_password[SBD_TOKEN_MAX + 1];
    char nats_prefix[SBD_NATS_NAME_MAX + 1];
    char nats_origin[SBD_NATS_NAME_MAX + 1]; /* derived when not given */
    struct sbd_fed_pattern fed[SBD_FED_PATTERNS_MAX];
    unsigned n_fed;
    uint32_t persist_replicas;  /* 0: 3 with 3 or more servers known, else 1 */
    uint64_t persist_max_age_s; /* 0: no limit */
    uint64_t persist_max_bytes;
    uint32_t persist_window; /* JetStream publishes in flight per topic */
    /* Recording (rec/rec.h): off unless --record is given. */
    char rec_glob[SBD_REC_PATTERNS_MAX][SHMBUS_TOPIC_NAME_MAX + 1]; /* Redis globs (glob.h) */
    unsigned n_rec;
    char journal_dir[SBD_PATH_MAX + 1]; /* absolute (realpath()); "" without --record */
    uint64_t journal_segment_size;      /* 0: the journal's default */
    uint64_t journal_retain_bytes;      /* 0: no limit */
    uint64_t journal_retain_ns;         /* 0: no limit */
    uint32_t journal_sync;              /* enum shmbus_journal_sync */
    uint32_t journal_sync_ms;           /* SHMBUS_JOURNAL_SYNC_INTERVAL's interval */
    /* Prometheus metrics (metrics/metrics.h): off unless --metrics is given. */
    int metrics;
    char metrics_host[64]; /* numeric IPv4 or IPv6 address */
    char metrics_port[8];
    char metrics_token[SBD_TOKEN_MAX + 1]; /* "" = loopback peers the bus allows */
    uint32_t metrics_max_slots;            /* slot series per topic; 0: none */
};

/* Descriptors the daemon needs besides the pidfds of the owners its
 * segments name (reaper.h): per client its connection, a segment a reply
 * carries and the pidfd of its hello; per topic its segment, and with
 * --record its journal writer's (any topic may match); per bridge
 * connection its socket; and 64 of its own (epoll, timers, listeners,
 * /proc reads, the log). */
static inline uint64_t sbd_config_fds(const struct sbd_config *c)
{
    return (uint64_t)c->max_clients * 3 + c->max_topics + 64 +
           (c->n_rec > 0 ? (uint64_t)c->max_topics * SBD_REC_FDS_PER_TOPIC : 0) +
           (c->bridge ? c->bridge_max_conns : 0);
}

/* Fill @p c with the daemon's defaults (no bus name, no bridge): whoever
 * builds a configuration (main.c, tests, fuzzers, benchmarks) starts here,
 * so that a new field is never left 0 by one of them. */
void sbd_config_defaults(struct sbd_config *c);

/*
 * Fill @p c from the command line @p argc, @p argv (getopt_long(): the
 * options sbd_config_usage() lists, and $SHMBUS_BUS, $SHMBUS_BRIDGE_TOKEN)
 * on top of sbd_config_defaults(), and derive the bus's paths. Sets the
 * log level (--log-level). Not thread-safe (getopt). @return 0; 1 for
 * --help; 2 for --version; -1 with the reason on stderr.
 */
int sbd_config_parse(struct sbd_config *c, int argc, char **argv);

/* Write the usage text, every option with its default, to @p f. */
void sbd_config_usage(FILE *f);

/* Bytes sbd_config_size_text() writes at most. */
#define SBD_SIZE_TEXT 24

/* Write size @p v in the largest unit that writes it whole, as the SIZE
 * options take it ("1G", "4M", "16K", "100"), into @p out. */
void sbd_config_size_text(uint64_t v, char out[SBD_SIZE_TEXT]);

#endif
