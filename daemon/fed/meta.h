/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's names and metadata, pure functions over text (no cnats
 * types, no shared state; fuzz/fuzz_fed.c drives them): topic <-> NATS
 * subject under the prefix, the --nats-prefix and --nats-origin rules, and
 * the Shmbus-* headers every exported message carries, encoded to text and
 * decoded with bounds (docs/design.md "Federation").
 */
#ifndef SHMBUSD_FED_META_H
#define SHMBUSD_FED_META_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fed.h"
#include "shmbus/shmbus.h"

#define SBF_HDR_ORIGIN "Shmbus-Origin"
#define SBF_HDR_EPOCH  "Shmbus-Epoch"
#define SBF_HDR_SEQ    "Shmbus-Seq"
#define SBF_HDR_PREV   "Shmbus-Prev"
#define SBF_HDR_COUNT  "Shmbus-Count"
#define SBF_HDR_TIME   "Shmbus-Time"
#define SBF_HDR_PID    "Shmbus-Pid"
#define SBF_HDR_MSG_ID "Nats-Msg-Id"

/* Longest subject: PREFIX.TOPIC. */
#define SBF_SUBJECT_MAX (SBD_NATS_NAME_MAX + 1 + SHMBUS_TOPIC_NAME_MAX)
/* Digits of a uint64_t in decimal. */
#define SBF_U64_DIGITS 20
/* Longest Nats-Msg-Id: ORIGIN/TOPIC/EPOCH/SEQ. */
#define SBF_MSG_ID_MAX                                                                             \
    (SBD_NATS_NAME_MAX + 1 + SHMBUS_TOPIC_NAME_MAX + 1 + SBF_U64_DIGITS + 1 + SBF_U64_DIGITS)

/* The prefix and origin rules (sbd_fed_prefix_ok(), sbd_fed_origin_ok())
 * and the default origin are in fed.h: config.c checks the options with
 * them. */

/* The subject of topic @p topic (a valid topic name) under @p prefix, into
 * @p out. @return 0, or -EINVAL: the name has an empty token (".." in it,
 * or it ends with '.') and cannot be a subject. */
int sbf_meta_subject(const char *prefix, const char *topic, char out[SBF_SUBJECT_MAX + 1]);

/* The topic of subject @p subj (@p len bytes, not terminated) under
 * @p prefix, into @p out. @return 0, or -EINVAL: not PREFIX.<a topic name
 * that can be a subject>. */
int sbf_meta_topic(const char *prefix, const char *subj, size_t len,
                   char out[SHMBUS_TOPIC_NAME_MAX + 1]);

/* A decimal header value: 1..SBF_U64_DIGITS digits, nothing else, no
 * overflow. @return 0, or -EINVAL. */
int sbf_meta_u64(const char *s, size_t len, uint64_t *out);

/* What the headers of a federated message carry. */
struct sbf_meta {
    char origin[SBD_NATS_NAME_MAX + 1];
    uint64_t epoch;   /* the topic segment's create_time_ns on the origin bus */
    uint64_t seq;     /* the message's seq there */
    uint64_t prev;    /* has_prev: persisted, the seq this exporter sent before */
    uint64_t count;   /* has_count: core NATS, messages its exporter took, this one too */
    uint64_t time_ns; /* publish time, CLOCK_REALTIME */
    uint32_t pid;     /* publisher's pid */
    int has_prev;
    int has_count;
};

/* The headers as text, for natsMsgHeader_Set(). */
struct sbf_meta_text {
    char epoch[SBF_U64_DIGITS + 1];
    char seq[SBF_U64_DIGITS + 1];
    char prev[SBF_U64_DIGITS + 1];  /* "" when there is none */
    char count[SBF_U64_DIGITS + 1]; /* "" when there is none */
    char time[SBF_U64_DIGITS + 1];
    char pid[SBF_U64_DIGITS + 1];
    char msg_id[SBF_MSG_ID_MAX + 1];
};

/* Encode @p m of a message of topic @p topic. */
void sbf_meta_encode(const struct sbf_meta *m, const char *topic, struct sbf_meta_text *out);

/* A header's value: NULL if absent. @p len receives its length. */
typedef const char *(*sbf_meta_get_fn)(void *arg, const char *key, size_t *len);

/* Decode the Shmbus-* headers through @p get into @p m. Shmbus-Prev
 * (below Shmbus-Seq) and Shmbus-Count (from 1) are optional; the others
 * must be there and well formed (origin: the origin rule; seq: below
 * UINT64_MAX, which a ring cannot mark; pid: a decimal that fits 32
 * bits).
 * @return 0, or -EINVAL with *@p bad naming the first header missing or
 * malformed. */
int sbf_meta_decode(sbf_meta_get_fn get, void *arg, struct sbf_meta *m, const char **bad);

/* Origins (other buses) whose last message an imported topic tracks;
 * beyond them the least recently heard one is forgotten (its next message
 * starts it again, nothing counted). */
#define SBF_ORIGINS_MAX 32

/* The last message taken from one origin. */
struct sbf_origin {
    char name[SBD_NATS_NAME_MAX + 1]; /* Shmbus-Origin */
    uint64_t epoch;                   /* Shmbus-Epoch: a new one starts over */
    uint64_t last;                    /* the seq of the last message taken from it */
    uint64_t count;                   /* its Shmbus-Count (0: none) */
    uint64_t heard;                   /* the caller's clock when last heard (least replaced) */
};

/* The origins of one topic. Zeroed: none. */
struct sbf_origins {
    struct sbf_origin o[SBF_ORIGINS_MAX];
    unsigned n;
};

/*
 * Where message @p m stands in its origin's order, among @p t's origins
 * (@p heard: the caller's clock, for replacing the least recently heard).
 * Losses are told by Shmbus-Count, the number of messages the origin's
 * exporter has taken for export on the topic (sent, or lost on its side),
 * this one included: what it skips ahead by was lost. (A gap in the seqs would not do: the seqs of
 * the messages the origin imported, which it never sends, lie between
 * those it sends.) A count that goes back means the exporter started
 * again (its daemon did): the messages it sent before this one, count - 1,
 * were lost. Without a count nothing is known; a new epoch starts over.
 * @return 1 to take it, with *@p lost the messages lost just before it;
 * 0 for a repeat (a seq at or below the last one taken).
 */
int sbf_meta_order(struct sbf_origins *t, const struct sbf_meta *m, uint64_t heard, uint64_t *lost);

#endif
