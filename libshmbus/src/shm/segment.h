/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic segments: creating, validating and mapping the shared memory that
 * holds one topic. The geometry an attacher uses is its own validated copy
 * (struct sb_geom), never re-read from shared memory, so a process that
 * scribbles over a live header cannot steer another one out of the mapping.
 * shm/ includes only the public header and util/: never ring/ or registry/.
 */
#ifndef SHMBUS_SHM_SEGMENT_H
#define SHMBUS_SHM_SEGMENT_H

#include <stdint.h>

#include "shm/layout.h"

/* Geometry of a segment, checked against the mapping size. */
struct sb_geom {
    uint32_t mode;
    uint32_t flags;
    uint32_t capacity;
    uint32_t mask;
    uint32_t cell_size;
    uint32_t max_msg_size;
    uint32_t max_subs;
    uint32_t max_groups;
    uint32_t max_pubs;
    uint32_t stall_timeout_ms;
    uint64_t slots_off;
    uint64_t groups_off;
    uint64_t pubs_off;
    uint64_t acks_off;    /* the groups' pending tables (layout.h) */
    uint64_t acktab_size; /* bytes of one group's table: head + ack_entries entries */
    uint32_t ack_entries; /* per group: SB_ACK_ENTRIES reliable, 0 lossy */
    uint32_t pad0;
    uint64_t cells_off;
    uint64_t total_len;
};

/* What a creator asks for; sb_geom_plan() derives the rest. */
struct sb_seg_params {
    uint32_t mode;
    uint32_t flags;
    uint32_t capacity;
    uint32_t max_msg_size;
    uint32_t max_subs;
    uint32_t max_groups;
    uint32_t max_pubs;
    uint32_t stall_timeout_ms;
};

struct sb_segment {
    uint8_t *base;
    int fd; /* the segment's file, kept open (close-on-exec) while mapped */
    struct sb_geom g;
    struct sb_shm_header *hdr;
    struct sb_shm_slot *slots;
    struct sb_shm_group *groups;
    struct sb_shm_pubrec *pubs;
    uint8_t *cells;
};

/* Compute the layout for @p p. @return 0 or SHMBUS_ERR_INVALID. */
int sb_geom_plan(const struct sb_seg_params *p, struct sb_geom *out);

/* Check a mapped header of @p map_len bytes and extract its geometry.
 * Reads only inside [base, base + map_len). @return 0 or an SHMBUS_ERR_*. */
int sb_geom_validate(const void *base, uint64_t map_len, struct sb_geom *out);

int sb_segment_create(const char *name, const struct sb_seg_params *p, uint32_t perm,
                      struct sb_segment *out);
int sb_segment_attach(const char *name, struct sb_segment *out);
/* Map an already open segment file descriptor. The segment keeps its own
 * duplicate; @p fd stays the caller's. */
int sb_segment_map_fd(int fd, struct sb_segment *out);
void sb_segment_unmap(struct sb_segment *seg);
int sb_segment_unlink(const char *name);

/* Head of group @p g's (0-based) pending table. Reliable topics only
 * (ack_entries != 0); @p g below max_groups. */
static inline struct sb_shm_acktab *sb_acktab(const struct sb_segment *seg, uint32_t g)
{
    return (struct sb_shm_acktab *)(seg->base + seg->g.acks_off + (uint64_t)g * seg->g.acktab_size);
}

/* Entry @p i (below ack_entries) of group @p g's pending table. */
static inline struct sb_shm_pending *sb_pending(const struct sb_segment *seg, uint32_t g,
                                                uint32_t i)
{
    return (struct sb_shm_pending *)(sb_acktab(seg, g) + 1) + i;
}

static inline struct sb_shm_cell *sb_cell(const struct sb_segment *seg, uint64_t seq)
{
    return (struct sb_shm_cell *)(seg->cells + (uint64_t)(seq & seg->g.mask) * seg->g.cell_size);
}

#endif
