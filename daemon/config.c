/* shmbusd configuration defaults (config.h). */
#include <string.h>
#include <sys/statvfs.h>

#include "config.h"

void sbd_config_defaults(struct sbd_config *c)
{
    struct statvfs fs;

    memset(c, 0, sizeof(*c));
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
    if (statvfs("/dev/shm", &fs) == 0 && fs.f_blocks > 0)
        c->max_shm = (uint64_t)fs.f_blocks * fs.f_frsize / 2;
}
