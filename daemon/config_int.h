/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside shmbusd's configuration: what config.c (the options, getopt and
 * the usage text) and config_nats.c (the federation options) share.
 * Nothing else includes it.
 */
#ifndef SHMBUSD_CONFIG_INT_H
#define SHMBUSD_CONFIG_INT_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "util/units.h"

/* The federation options' getopt values, after config.c's own. */
enum {
    SBD_OPT_NATS = 1024,
    SBD_OPT_NCREDS,
    SBD_OPT_NTOKEN,
    SBD_OPT_NUSER,
    SBD_OPT_NCA,
    SBD_OPT_NCERT,
    SBD_OPT_NKEY,
    SBD_OPT_NPREFIX,
    SBD_OPT_NORIGIN,
    SBD_OPT_FEDERATE, /* the four pattern options, in enum sbd_fed_kind's order */
    SBD_OPT_EXPORT,
    SBD_OPT_IMPORT,
    SBD_OPT_PERSIST,
    SBD_OPT_PREPLICAS,
    SBD_OPT_PAGE,
    SBD_OPT_PBYTES,
    SBD_OPT_PWINDOW,
    SBD_OPT_RECORD, /* the recording options (config_rec.c) */
    SBD_OPT_JDIR,
    SBD_OPT_JSEG,
    SBD_OPT_JRETAIN,
    SBD_OPT_JSYNC
};

/* The metrics options' getopt values (config_metrics.c). */
enum { SBD_OPT_METRICS = 1100, SBD_OPT_MTOKEN, SBD_OPT_MSLOTS };

/* The metrics options' entries, each with its comma. */
/* clang-format off */
#define SBD_CONFIG_METRICS_OPTIONS \
    {"metrics", required_argument, NULL, SBD_OPT_METRICS},               \
    {"metrics-token-file", required_argument, NULL, SBD_OPT_MTOKEN},     \
    {"metrics-max-slots", required_argument, NULL, SBD_OPT_MSLOTS},
/* clang-format on */

/* Their entries of config.c's getopt_long() table, each with its comma. */
/* clang-format off */
#define SBD_CONFIG_NATS_OPTIONS \
    {"nats", required_argument, NULL, SBD_OPT_NATS},                   \
    {"nats-creds", required_argument, NULL, SBD_OPT_NCREDS},           \
    {"nats-token-file", required_argument, NULL, SBD_OPT_NTOKEN},      \
    {"nats-user-file", required_argument, NULL, SBD_OPT_NUSER},        \
    {"nats-ca", required_argument, NULL, SBD_OPT_NCA},                 \
    {"nats-cert", required_argument, NULL, SBD_OPT_NCERT},             \
    {"nats-key", required_argument, NULL, SBD_OPT_NKEY},               \
    {"nats-prefix", required_argument, NULL, SBD_OPT_NPREFIX},         \
    {"nats-origin", required_argument, NULL, SBD_OPT_NORIGIN},         \
    {"federate", required_argument, NULL, SBD_OPT_FEDERATE},           \
    {"export", required_argument, NULL, SBD_OPT_EXPORT},               \
    {"import", required_argument, NULL, SBD_OPT_IMPORT},               \
    {"persist", required_argument, NULL, SBD_OPT_PERSIST},             \
    {"persist-replicas", required_argument, NULL, SBD_OPT_PREPLICAS},  \
    {"persist-max-age", required_argument, NULL, SBD_OPT_PAGE},        \
    {"persist-max-bytes", required_argument, NULL, SBD_OPT_PBYTES},    \
    {"persist-window", required_argument, NULL, SBD_OPT_PWINDOW},
/* clang-format on */

/* The recording options' entries, each with its comma. */
/* clang-format off */
#define SBD_CONFIG_REC_OPTIONS \
    {"record", required_argument, NULL, SBD_OPT_RECORD},                 \
    {"journal-dir", required_argument, NULL, SBD_OPT_JDIR},              \
    {"journal-segment-size", required_argument, NULL, SBD_OPT_JSEG},     \
    {"journal-retain", required_argument, NULL, SBD_OPT_JRETAIN},        \
    {"journal-sync", required_argument, NULL, SBD_OPT_JSYNC},
/* clang-format on */

/* config.c's value parsers (sizes, and the journal's values, are
 * util/units.h's, shared with the shmbus command). @return 0, or -1
 * (nothing printed, but by sbd_config_token()). */
/* A positive decimal that fits 32 bits. */
int sbd_config_u32(const char *s, uint32_t *out);
/* As sbd_config_u32(), 0 included. */
int sbd_config_number(const char *s, uint32_t *out);
/* The first line of file @p path, 1 to @p cap - 1 bytes (the reason on
 * stderr if not). */
int sbd_config_token(const char *path, char *out, size_t cap);
/* "[ADDR]:PORT" (--bridge, --metrics): a numeric IPv4 address, or an IPv6
 * one in brackets, into @p host; no address means SBD_BRIDGE_HOST_DEFAULT
 * (loopback). */
int sbd_config_listen(const char *s, char *host, size_t hcap, char *port, size_t pcap);

/* config_nats.c: one federation option (@p opt SBD_OPT_*). @return 0, or
 * -1 with the reason on stderr. */
int sbd_config_nats_option(struct sbd_config *c, int opt, const char *arg);
/* After the options: --nats for those that need it, credentials of one
 * kind, cert with key, and the default origin. @return 0 or -1 (said). */
int sbd_config_nats_finish(struct sbd_config *c);
/* The federation part of the usage text, with @p d's defaults. */
void sbd_config_nats_usage(FILE *f, const struct sbd_config *d);

/* config_rec.c: one recording option (@p opt SBD_OPT_RECORD..JSYNC).
 * @return 0, or -1 with the reason on stderr. */
int sbd_config_rec_option(struct sbd_config *c, int opt, const char *arg);
/* After the options: --record and --journal-dir go together, and the
 * directory exists, is one, and the daemon may write there (made
 * absolute). @return 0 or -1 (said). */
int sbd_config_rec_finish(struct sbd_config *c);
/* The recording part of the usage text. */
void sbd_config_rec_usage(FILE *f);

/* config_metrics.c: one metrics option (@p opt SBD_OPT_METRICS..MSLOTS).
 * @return 0, or -1 with the reason on stderr. */
int sbd_config_metrics_option(struct sbd_config *c, int opt, const char *arg);
/* The metrics part of the usage text, with @p d's defaults. */
void sbd_config_metrics_usage(FILE *f, const struct sbd_config *d);

#endif
