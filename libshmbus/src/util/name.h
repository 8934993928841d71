/*
 * Name rules, in one place for the library and the daemon: topic, group
 * and segment names are 1..max characters of [A-Za-z0-9._:-], not starting
 * with '.' (so that no name is "." or "..", nor a hidden file in
 * /dev/shm); bus names are 1..SHMBUS_BUS_NAME_MAX characters of
 * [A-Za-z0-9_-] (they name a socket file and prefix segment names, so
 * they hold no '.'). Pure functions, no shared state.
 */
#ifndef SHMBUS_UTIL_NAME_H
#define SHMBUS_UTIL_NAME_H

#include <stddef.h>

/* 1 if @p s (NULL: no) is a valid name of at most @p max characters:
 * SHMBUS_TOPIC_NAME_MAX for a topic, SHMBUS_GROUP_NAME_MAX for a group,
 * SHMBUS_NAME_MAX for a segment. Else 0. */
int sb_name_valid(const char *s, size_t max);

/* 1 if @p s (NULL: no) is a valid bus name, else 0. */
int sb_name_bus_valid(const char *s);

#endif
