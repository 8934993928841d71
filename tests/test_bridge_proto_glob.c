/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's glob matcher (libshmbus/src/util/glob.h, Redis's PSUBSCRIBE
 * patterns), driven directly: wildcards, backtracking, classes and escapes,
 * and a recursive reference (ref_glob.h) on random patterns. Inputs are
 * exact-size heap copies so that ASan catches any access past them.
 */
#include "prototest.h"

#include "util/glob.h"
#include "ref_glob.h"

/* ================================================================= glob */

/* sb_glob_match() on exact-size copies of @p pat and @p s, checked against
 * ref_glob() (ref_glob.h). @return the match. */
static int glob(const char *pat, const char *s)
{
    size_t pl = strlen(pat), sl = strlen(s);
    char *pc = exact_copy(pat, pl), *sc = exact_copy(s, sl); /* not terminated */
    int m;

    m = sb_glob_match(pc, pl, sc, sl);
    assert_int_equal(m, ref_glob(pc, pc + pl, sc, sc + sl));
    free(pc);
    free(sc);
    return m;
}

static void test_glob_wildcards(void **state)
{
    (void)state;
    assert_true(glob("foo", "foo"));
    assert_false(glob("foo", "fo"));
    assert_false(glob("foo", "food"));
    assert_true(glob("", ""));
    assert_false(glob("", "a"));
    assert_true(glob("*", ""));
    assert_true(glob("*", "anything at all"));
    assert_true(glob("**", "x"));
    assert_true(glob("orders.*", "orders.eu"));
    assert_true(glob("orders.*", "orders."));
    assert_false(glob("orders.*", "orders"));
    assert_true(glob("*.eu", "orders.eu"));
    assert_false(glob("*.eu", "orders.us"));
    assert_false(glob("?", ""));
    assert_true(glob("?", "a"));
    assert_false(glob("?", "ab"));
    assert_true(glob("h?llo", "hello"));
    assert_true(glob("h?llo", "hallo"));
    assert_false(glob("h?llo", "hllo"));
    assert_true(glob("h*llo", "hllo"));
    assert_true(glob("h*llo", "heeeello"));
    assert_true(glob("*?", "a"));
    assert_false(glob("*?", ""));
    assert_true(glob("?*?", "ab"));
    assert_false(glob("?*?", "a"));
}

static void test_glob_star_backtracking(void **state)
{
    static const char *const yes[] = {"abc",  "aXbYc", "abbc",  "aaabbbccc", "abcabc", "a*b*c",
                                      "abXc", "aXbc",  "abcbc", "acbc",      "a-b-c"};
    static const char *const no[] = {"ac",  "ab", "acb", "abcb", "bc",  "Abc",
                                     "abC", "",   "cba", "a",    "abca"};
    char s[128];

    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!glob("a*b*c", yes[i]))
            fail_msg("a*b*c should match %s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (glob("a*b*c", no[i]))
            fail_msg("a*b*c should not match %s", no[i]);
    assert_true(glob("*a*b", "xaxaxb"));
    assert_true(glob("a*a*a", "aaa"));
    assert_false(glob("a*a*a", "aa"));
    assert_true(glob("*ab*ab*", "xabyabz"));
    assert_false(glob("*ab*ab*", "xabyaz"));
    /* Patterns that make naive recursion exponential finish at once. */
    memset(s, 'a', 100);
    s[100] = '\0';
    assert_false(sb_glob_match("a*a*a*a*a*a*a*a*a*a*b", 21, s, 100));
    assert_true(sb_glob_match("a*a*a*a*a*a*a*a*a*a*a", 21, s, 100));
    assert_false(sb_glob_match("*a*a*a*a*a*a*a*a*a*a*b*", 23, s, 100));
}

static void test_glob_classes_and_escapes(void **state)
{
    (void)state;
    assert_true(glob("h[ae]llo", "hello"));
    assert_true(glob("h[ae]llo", "hallo"));
    assert_false(glob("h[ae]llo", "hillo"));
    assert_false(glob("h[ae]llo", "hllo"));
    assert_true(glob("h[^e]llo", "hallo"));
    assert_false(glob("h[^e]llo", "hello"));
    assert_true(glob("h[a-b]llo", "hbllo"));
    assert_false(glob("h[a-b]llo", "hcllo"));
    assert_true(glob("[z-a]", "m")); /* a reversed range */
    assert_true(glob("[^a-z]", "A"));
    assert_false(glob("[^a-z]", "q"));
    assert_true(glob("[a-]", "-")); /* '-' before ']' is literal */
    assert_true(glob("[a-]", "a"));
    assert_false(glob("[a-]", "b"));
    assert_true(glob("[-a]", "-"));
    assert_true(glob("[\\]]", "]"));
    assert_true(glob("[\\-]", "-"));
    assert_true(glob("[a\\-z]", "z"));
    assert_false(glob("[a\\-z]", "b"));
    assert_true(glob("[^]", "x")); /* an empty negated class */
    assert_false(glob("[]", "]")); /* ']' at once closes the class (not POSIX) */
    assert_false(glob("[]a]", "]a]"));
    assert_true(glob("[abc", "b")); /* unterminated: up to the end */
    assert_false(glob("[abc", "bc"));
    assert_true(glob("[[]", "["));
    assert_true(glob("h\\*llo", "h*llo"));
    assert_false(glob("h\\*llo", "hello"));
    assert_true(glob("\\?", "?"));
    assert_false(glob("\\?", "a"));
    assert_true(glob("\\[a]", "[a]"));
    assert_true(glob("a\\", "a\\")); /* a trailing backslash is literal */
    assert_true(glob("\\\\", "\\"));
    assert_true(glob("*\\*", "x*"));
    assert_false(glob("*\\*", "x"));
    /* Bytes, not characters: NUL and high bytes are literal. */
    assert_true(sb_glob_match("a\0*", 3, "a\0bc", 4));
    assert_false(sb_glob_match("a\0*", 3, "a\1bc", 4));
    assert_true(sb_glob_match("?\xff", 2, "\xc3\xff", 2));
}

static void test_glob_matches_reference(void **state)
{
    static const char alpha[] = "ab*?[]^-\\";
    uint64_t seed = 0x2545f4914f6cdd1dull;
    char pat[10], s[8];

    (void)state;
    for (int round = 0; round < 300000; round++) {
        size_t pl = tu_rng_next(&seed) % (sizeof(pat) + 1),
               sl = tu_rng_next(&seed) % (sizeof(s) + 1);

        for (size_t i = 0; i < pl; i++)
            pat[i] = alpha[tu_rng_next(&seed) % (sizeof(alpha) - 1)];
        for (size_t i = 0; i < sl; i++)
            s[i] = alpha[tu_rng_next(&seed) % (sizeof(alpha) - 1)];
        if (sb_glob_match(pat, pl, s, sl) != ref_glob(pat, pat + pl, s, s + sl))
            fail_msg("pattern \"%.*s\" on \"%.*s\": %d", (int)pl, pat, (int)sl, s,
                     sb_glob_match(pat, pl, s, sl));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob_wildcards),
        cmocka_unit_test(test_glob_star_backtracking),
        cmocka_unit_test(test_glob_classes_and_escapes),
        cmocka_unit_test(test_glob_matches_reference),
    };
    tu_init();
    return cmocka_run_group_tests_name("bridge_proto_glob", tests, NULL, NULL);
}
