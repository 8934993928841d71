/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The allow rule (daemon/access.c) for a peer known by its uid only: the
 * groups the user database gives a uid are kept a while, so a uid that
 * reconnects in a loop does not make the bridge's I/O thread ask the
 * database (NSS: maybe sssd or LDAP) every time; the table is bounded.
 * Against the real user database of this host.
 */
#include "testutil.h"

#include <pwd.h>

#include "access.h"

/* A uid the database knows, with a group rule of its primary group: one
 * lookup, then its groups are kept, and the rule is applied to them
 * afresh each time (a changed rule counts at once). */
static void test_access_groups_kept(void **state)
{
    struct passwd *pw = getpwnam("daemon");
    struct sbd_config cfg = {.n_allow_gid = 1};
    uint64_t before;

    (void)state;
    if (pw == NULL || pw->pw_uid == getuid() || pw->pw_gid == 0)
        skip(); /* no user daemon here */
    cfg.allow_gid[0] = pw->pw_gid;
    before = sbd_access_lookups();
    assert_int_equal(sbd_access_uid_allowed(&cfg, pw->pw_uid), 1);
    assert_int_equal(sbd_access_lookups(), before + 1);
    for (int i = 0; i < 100; i++)
        assert_int_equal(sbd_access_uid_allowed(&cfg, pw->pw_uid), 1);
    assert_int_equal(sbd_access_lookups(), before + 1);
    cfg.allow_gid[0] = 0;
    assert_int_equal(sbd_access_uid_allowed(&cfg, pw->pw_uid), 0);
    assert_int_equal(sbd_access_lookups(), before + 1);
}

/* Without a group rule the database is never asked. */
static void test_access_no_group_rule(void **state)
{
    struct sbd_config cfg = {0};
    uint64_t before = sbd_access_lookups();

    (void)state;
    assert_int_equal(sbd_access_uid_allowed(&cfg, getuid()), 1);
    assert_int_equal(sbd_access_uid_allowed(&cfg, 4000000000u), 0);
    assert_int_equal(sbd_access_lookups(), before);
}

/* Uids the database does not know are kept too (by their uid alone),
 * 64 at most: the 65th drops the oldest, which is looked up again. */
static void test_access_table_bounded(void **state)
{
    struct sbd_config cfg = {.n_allow_gid = 1, .allow_gid = {12345}};
    uint64_t before = sbd_access_lookups();

    (void)state;
    for (uid_t u = 0; u < 65; u++)
        assert_int_equal(sbd_access_uid_allowed(&cfg, 3000000000u + u), 0);
    assert_int_equal(sbd_access_lookups(), before + 65);
    assert_int_equal(sbd_access_uid_allowed(&cfg, 3000000000u + 64), 0);
    assert_int_equal(sbd_access_lookups(), before + 65);
    assert_int_equal(sbd_access_uid_allowed(&cfg, 3000000000u), 0);
    assert_int_equal(sbd_access_lookups(), before + 66);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_groups_kept),
        cmocka_unit_test(test_access_no_group_rule),
        cmocka_unit_test(test_access_table_bounded),
    };

    tu_init();
    return cmocka_run_group_tests_name("access", tests, NULL, NULL);
}
