/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd logging: one line per event on stderr, with a level and a time;
 * when stderr is the journal ($JOURNAL_STREAM names it), with the syslog
 * priority prefix ("<3>" to "<7>") instead, and no time.
 * After sbd_log_start(), no caller blocks on stderr (but for an ERROR
 * line's bounded wait, sbd_log()): lines go through
 * a bounded buffer (SBD_LOG_BUFFER bytes) that a writer thread drains;
 * lines that find it full are dropped and counted in a line of their own.
 */
#ifndef SHMBUSD_LOG_H
#define SHMBUSD_LOG_H

enum sbd_level { SBD_ERROR = 0, SBD_WARN = 1, SBD_INFO = 2, SBD_DEBUG = 3 };

/* Bytes of lines waiting for stderr; beyond them, lines are dropped. */
#define SBD_LOG_BUFFER (64u * 1024u)
/* Longest wait at exit for the lines still waiting. */
#define SBD_LOG_FLUSH_S 1

/* Register sbd_log_flush() to run at exit, start the writer thread (after
 * any fork: it does not survive one), and catch the fatal signals to
 * write the buffer on the way down (log.c). @return 0 or -errno: nothing
 * was started, lines keep going straight to stderr. */
int sbd_log_start(void);

/* Wait, at most SBD_LOG_FLUSH_S, until the lines so far are written. */
void sbd_log_flush(void);

/* Set the most verbose level printed (default SBD_INFO). */
void sbd_log_set_level(enum sbd_level level);

/* Parse "error", "warn", "info" or "debug". @return 0, or -1 if unknown. */
int sbd_log_parse_level(const char *s, enum sbd_level *out);

/* Print one line if @p level is enabled. Once sbd_log_start() has run,
 * never blocks on stderr, except an SBD_ERROR line, which waits at most
 * SBD_LOG_FLUSH_S for it and the lines before it to be written (once per
 * stretch of stderr not draining). Any thread. Not for the hot path. */
void sbd_log(enum sbd_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
