/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ThreadSanitizer annotations for synchronisation it cannot see: liburcu is
 * not built with TSan, so the ordering that call_rcu() and grace periods
 * give (everything before call_rcu() happens before its callback) is
 * invisible to it. These state that ordering; outside TSan builds they are
 * nothing.
 */
#ifndef SHMBUSD_TSAN_H
#define SHMBUSD_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define SBD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SBD_TSAN 1
#endif
#endif

#ifdef SBD_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/* Before handing @p p to call_rcu(), and before publishing it through a
 * liburcu structure (cds_lfht_add()). */
#define SBD_TSAN_RELEASE(p) __tsan_release(p)
/* At the start of the call_rcu() callback for @p p, and where a reader
 * finds it in a liburcu structure. */
#define SBD_TSAN_ACQUIRE(p) __tsan_acquire(p)
/* A grace period: every reader marks the end of its read-side section
 * (before urcu_memb_read_unlock()), every call_rcu() callback acquires it
 * first, so that what readers did happens before the free. */
extern char sbd_tsan_grace;
#define SBD_TSAN_READ_DONE() __tsan_release(&sbd_tsan_grace)
#define SBD_TSAN_GRACE()     __tsan_acquire(&sbd_tsan_grace)
#else
#define SBD_TSAN_RELEASE(p)  ((void)(p))
#define SBD_TSAN_ACQUIRE(p)  ((void)(p))
#define SBD_TSAN_READ_DONE() ((void)0)
#define SBD_TSAN_GRACE()     ((void)0)
#endif

#endif
