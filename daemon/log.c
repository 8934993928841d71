/* shmbusd logging (log.h). One fprintf per line, so lines never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum sbd_level log_level = SBD_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void sbd_log_set_level(enum sbd_level level)
{
    log_level = level;
}

int sbd_log_parse_level(const char *s, enum sbd_level *out)
{
    for (int i = 0; i <= SBD_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum sbd_level)i;
            return 0;
        }
    }
    return -1;
}

void sbd_log(enum sbd_level level, const char *fmt, ...)
{
    char msg[512], stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ shmbusd %-5s %s\n", stamp, ts.tv_nsec / 1000000, level_names[level],
            msg);
}
