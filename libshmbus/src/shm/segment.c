/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Segment management. A creator plans the geometry, reserves every page of
 * the segment up front (so a full /dev/shm is a clear error now rather than
 * a SIGBUS later), writes the header and publishes it by storing the layout
 * version last. An attacher maps the file, waits for nothing, and checks
 * magic, version and every length against the size of its own mapping.
 */
#include "shm/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmbus/shmbus.h"
#include "util/clock.h"
#include "util/name.h"

#define SEG_PATH_MAX (SHMBUS_NAME_MAX + 2)

static int seg_path(const char *name, char path[SEG_PATH_MAX])
{
    if (!sb_name_valid(name, SHMBUS_NAME_MAX))
        return SHMBUS_ERR_INVALID;
    snprintf(path, SEG_PATH_MAX, "/%s", name);
    return 0;
}

/* A group's pending table keeps what follows it (the cells) line-aligned. */
static_assert((sizeof(struct sb_shm_acktab) + SB_ACK_ENTRIES * sizeof(struct sb_shm_pending)) %
                      SB_LINE ==
                  0,
              "pending table size");

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static int is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

int sb_geom_plan(const struct sb_seg_params *p, struct sb_geom *out)
{
    if (p->mode != SHMBUS_LOSSY && p->mode != SHMBUS_RELIABLE)
        return SHMBUS_ERR_INVALID;
    if (p->flags & ~(uint32_t)SHMBUS_TOPIC_EXCLUSIVE)
        return SHMBUS_ERR_INVALID;
    if (!is_pow2(p->capacity) || p->capacity < SB_CAPACITY_MIN || p->capacity > SB_CAPACITY_MAX)
        return SHMBUS_ERR_INVALID;
    if (p->max_msg_size > SB_MAX_MSG_MAX)
        return SHMBUS_ERR_INVALID;
    if (p->max_subs == 0 || p->max_subs > SB_SUBS_MAX || p->max_groups > SB_GROUPS_MAX)
        return SHMBUS_ERR_INVALID;
    if (p->max_pubs == 0 || p->max_pubs > SB_PUBS_MAX)
        return SHMBUS_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    out->mode = p->mode;
    out->flags = p->flags;
    out->capacity = p->capacity;
    out->mask = p->capacity - 1;
    out->cell_size = (uint32_t)align_up(sizeof(struct sb_shm_cell) + p->max_msg_size, SB_LINE);
    out->max_msg_size = p->max_msg_size;
    out->max_subs = p->max_subs;
    out->max_groups = p->max_groups;
    out->stall_timeout_ms = p->stall_timeout_ms;
    out->max_pubs = p->max_pubs;
    out->slots_off = sizeof(struct sb_shm_header);
    out->groups_off = out->slots_off + (uint64_t)p->max_subs * sizeof(struct sb_shm_slot);
    out->pubs_off = out->groups_off + (uint64_t)p->max_groups * sizeof(struct sb_shm_group);
    out->acks_off = out->pubs_off + (uint64_t)p->max_pubs * sizeof(struct sb_shm_pubrec);
    /* Acknowledged groups exist on reliable topics only (ring/ack.c). */
    out->ack_entries = p->mode == SHMBUS_RELIABLE ? SB_ACK_ENTRIES : 0;
    out->acktab_size = out->ack_entries
                           ? sizeof(struct sb_shm_acktab) +
                                 (uint64_t)out->ack_entries * sizeof(struct sb_shm_pending)
                           : 0;
    out->cells_off = out->acks_off + (uint64_t)p->max_groups * out->acktab_size;
    out->total_len = out->cells_off + (uint64_t)p->capacity * out->cell_size;
    return 0;
}

int sb_geom_validate(const void *base, uint64_t map_len, struct sb_geom *out)
{
    const struct sb_shm_header *h = base;
    struct sb_seg_params p;
    struct sb_geom g;
    uint32_t version;

    /* An empty file is a segment whose creator has not sized it yet. */
    if (map_len == 0)
        return SHMBUS_ERR_NOT_READY;
    if (map_len < sizeof(*h))
        return SHMBUS_ERR_TRUNCATED;
    /* acquire: pairs with the release store of version in sb_segment_create();
     * every other header field is visible once version is. */
    version = atomic_load_explicit(&h->version, memory_order_acquire);
    if (version == 0)
        return SHMBUS_ERR_NOT_READY;
    if (h->magic != SB_SHM_MAGIC)
        return SHMBUS_ERR_BAD_MAGIC;
    if ((version >> 16) != SB_LAYOUT_MAJOR)
        return SHMBUS_ERR_VERSION;
    if (h->header_len != sizeof(*h))
        return SHMBUS_ERR_VERSION;

    /* Re-plan from the stored parameters: every offset and length must be
     * exactly what this library would have laid out, and fit the mapping. */
    p = (struct sb_seg_params){.mode = h->mode,
                               .flags = h->flags,
                               .capacity = h->capacity,
                               .max_msg_size = h->max_msg_size,
                               .max_subs = h->max_subs,
                               .max_groups = h->max_groups,
                               .max_pubs = h->max_pubs,
                               .stall_timeout_ms = h->stall_timeout_ms};
    if (sb_geom_plan(&p, &g) != 0)
        return SHMBUS_ERR_INVALID;
    if (g.cell_size != h->cell_size || g.slots_off != h->slots_off ||
        g.groups_off != h->groups_off || g.pubs_off != h->pubs_off || g.acks_off != h->acks_off ||
        g.ack_entries != h->ack_entries || g.cells_off != h->cells_off)
        return SHMBUS_ERR_INVALID;
    if (h->total_len != g.total_len || g.total_len > map_len)
        return SHMBUS_ERR_TRUNCATED;
    *out = g;
    return 0;
}

static void seg_bind(struct sb_segment *seg, uint8_t *base, const struct sb_geom *g)
{
    seg->base = base;
    seg->g = *g;
    seg->hdr = (struct sb_shm_header *)base;
    seg->slots = (struct sb_shm_slot *)(base + g->slots_off);
    seg->groups = (struct sb_shm_group *)(base + g->groups_off);
    seg->pubs = (struct sb_shm_pubrec *)(base + g->pubs_off);
    seg->cells = base + g->cells_off;
}

static void seg_init(uint8_t *base, const struct sb_geom *g)
{
    struct sb_shm_header *h = (struct sb_shm_header *)base;

    /* The pages are fresh and zero: slots are FREE, cells EMPTY, groups
     * without members, counters 0. Plain stores suffice: nobody may look
     * before version is released below. */
    h->magic = SB_SHM_MAGIC;
    h->header_len = sizeof(*h);
    h->total_len = g->total_len;
    h->capacity = g->capacity;
    h->cell_size = g->cell_size;
    h->max_msg_size = g->max_msg_size;
    h->mode = g->mode;
    h->flags = g->flags;
    h->max_subs = g->max_subs;
    h->max_groups = g->max_groups;
    h->max_pubs = g->max_pubs;
    h->stall_timeout_ms = g->stall_timeout_ms;
    h->slots_off = g->slots_off;
    h->groups_off = g->groups_off;
    h->pubs_off = g->pubs_off;
    h->acks_off = g->acks_off;
    h->ack_entries = g->ack_entries;
    h->cells_off = g->cells_off;
    h->create_time_ns = sb_real_ns();
    h->creator_pid = (uint32_t)getpid();
    /* release: pairs with the acquire load in sb_geom_validate(); publishes
     * every store above. */
    atomic_store_explicit(&h->version, SB_LAYOUT_VERSION, memory_order_release);
}

int sb_segment_create(const char *name, const struct sb_seg_params *p, uint32_t perm,
                      struct sb_segment *out)
{
    char path[SEG_PATH_MAX];
    struct sb_geom g;
    void *base = MAP_FAILED;
    int fd, rc;

    memset(out, 0, sizeof(*out));
    rc = seg_path(name, path);
    if (rc < 0)
        return rc;
    rc = sb_geom_plan(p, &g);
    if (rc < 0)
        return rc;
    if (perm & ~0777u)
        return SHMBUS_ERR_INVALID;
    fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)perm);
    if (fd < 0)
        return -errno;
    /* The umask may have narrowed the mode; the caller's choice wins. */
    if (fchmod(fd, (mode_t)perm) < 0 || ftruncate(fd, (off_t)g.total_len) < 0) {
        rc = -errno;
        goto err;
    }
    /* Reserve every page now: tmpfs would otherwise SIGBUS on first touch.
     * A signal may stop it (EINTR, which posix_fallocate() passes on): go
     * on, the pages reserved so far stay. */
    do
        rc = posix_fallocate(fd, 0, (off_t)g.total_len);
    while (rc == EINTR);
    if (rc != 0) {
        rc = (rc == ENOSPC || rc == EFBIG) ? SHMBUS_ERR_NO_SPACE : -rc;
        goto err;
    }
    base = mmap(NULL, g.total_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        goto err;
    }
    seg_init(base, &g);
    seg_bind(out, base, &g);
    out->fd = fd;
    return 0;
err:
    shm_unlink(path);
    close(fd);
    return rc;
}

int sb_segment_map_fd(int fd, struct sb_segment *out)
{
    struct stat st;
    struct sb_geom g;
    void *base;
    int rc, own;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size == 0)
        return SHMBUS_ERR_NOT_READY;
    if ((uint64_t)st.st_size < sizeof(struct sb_shm_header))
        return SHMBUS_ERR_TRUNCATED;
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return -errno;
    rc = sb_geom_validate(base, (uint64_t)st.st_size, &g);
    own = rc < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (rc == 0 && own < 0)
        rc = -errno;
    if (rc < 0) {
        munmap(base, (size_t)st.st_size);
        return rc;
    }
    /* Keep only the validated length mapped; anything past it is not ours. */
    if ((uint64_t)st.st_size > g.total_len)
        munmap((uint8_t *)base + align_up(g.total_len, (uint64_t)sysconf(_SC_PAGESIZE)),
               (size_t)((uint64_t)st.st_size -
                        align_up(g.total_len, (uint64_t)sysconf(_SC_PAGESIZE))));
    seg_bind(out, base, &g);
    out->fd = own;
    return 0;
}

int sb_segment_attach(const char *name, struct sb_segment *out)
{
    char path[SEG_PATH_MAX];
    int fd, rc;

    memset(out, 0, sizeof(*out));
    rc = seg_path(name, path);
    if (rc < 0)
        return rc;
    fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    rc = sb_segment_map_fd(fd, out);
    close(fd);
    return rc;
}

void sb_segment_unmap(struct sb_segment *seg)
{
    if (seg->base != NULL) {
        munmap(seg->base, seg->g.total_len);
        close(seg->fd);
    }
    memset(seg, 0, sizeof(*seg));
    seg->fd = -1;
}

int sb_segment_unlink(const char *name)
{
    char path[SEG_PATH_MAX];
    int rc = seg_path(name, path);

    if (rc < 0)
        return rc;
    return shm_unlink(path) < 0 ? -errno : 0;
}
