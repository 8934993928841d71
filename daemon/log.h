/* shmbusd logging: one line per event on stderr, with a level and a time. */
#ifndef SHMBUSD_LOG_H
#define SHMBUSD_LOG_H

enum sbd_level { SBD_ERROR = 0, SBD_WARN = 1, SBD_INFO = 2, SBD_DEBUG = 3 };

/* Set the most verbose level printed (default SBD_INFO). */
void sbd_log_set_level(enum sbd_level level);

/* Parse "error", "warn", "info" or "debug". @return 0, or -1 if unknown. */
int sbd_log_parse_level(const char *s, enum sbd_level *out);

/* Print one line if @p level is enabled. Not for the hot path. */
void sbd_log(enum sbd_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
