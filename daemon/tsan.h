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
/* Before handing @p p to call_rcu(). */
#define SBD_TSAN_RELEASE(p) __tsan_release(p)
/* At the start of the call_rcu() callback for @p p. */
#define SBD_TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define SBD_TSAN_RELEASE(p) ((void)(p))
#define SBD_TSAN_ACQUIRE(p) ((void)(p))
#endif

#endif
