/* test_base.c — base/: the growable buffer and array, the list, the
 * cleanup helpers, untrusted text made safe to show. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup.h"
#include "list.h"
#include "suites.h"
#include "text.h"

static void test_buf_append_consume(void)
{
    struct lbw_buf b = {0};
    CU_ASSERT(lbw_buf_append(&b, "hello ", 6) == 0);
    CU_ASSERT(lbw_buf_append(&b, "world", 5) == 0);
    CU_ASSERT(lbw_buf_putc(&b, '!') == 0);
    CU_ASSERT(lbw_buf_terminate(&b) == 0);
    CU_ASSERT_EQUAL(b.len, 12);
    CU_ASSERT_STRING_EQUAL((char *)b.p, "hello world!");
    lbw_buf_consume(&b, 6);
    CU_ASSERT_EQUAL(b.len, 6);
    CU_ASSERT(memcmp(b.p, "world!", 6) == 0);
    lbw_buf_consume(&b, 100);
    CU_ASSERT_EQUAL(b.len, 0);
    /* Many small appends: amortised doubling keeps every byte. */
    for (int i = 0; i < 100000; i++)
        CU_ASSERT_FATAL(lbw_buf_putc(&b, (uint8_t)i) == 0);
    CU_ASSERT_EQUAL(b.len, 100000);
    CU_ASSERT(b.cap >= b.len && b.cap < 2 * 131072 + 1);
    CU_ASSERT_EQUAL(b.p[99999], (uint8_t)99999);
    uint8_t *p = lbw_buf_steal(&b);
    CU_ASSERT(p != NULL && b.p == NULL && b.len == 0 && b.cap == 0);
    free(p);
    lbw_buf_free(&b);
}

static void test_grow_overflow(void)
{
    struct lbw_buf b = {0};
    CU_ASSERT(lbw_buf_append(&b, "x", 1) == 0);
    CU_ASSERT(lbw_buf_reserve(&b, SIZE_MAX) == -EOVERFLOW);
    CU_ASSERT(lbw_buf_reserve(&b, SIZE_MAX - 1) == -EOVERFLOW);
    CU_ASSERT_EQUAL(b.len, 1); /* unchanged on failure */
    lbw_buf_free(&b);

    uint64_t *arr = NULL;
    size_t cap = 0;
    CU_ASSERT(lbw_grow(&arr, &cap, 3, sizeof(*arr)) == 0);
    CU_ASSERT(cap >= 3 && arr != NULL);
    arr[2] = 7;
    CU_ASSERT(lbw_grow(&arr, &cap, SIZE_MAX / 4, sizeof(*arr)) == -EOVERFLOW);
    CU_ASSERT(cap >= 3 && arr[2] == 7);
    CU_ASSERT(lbw_grow(&arr, &cap, 2, sizeof(*arr)) == 0); /* no shrink */
    free(arr);
}

struct item {
    int v;
    struct lbw_list link;
};

static void test_list(void)
{
    struct lbw_list h;
    lbw_list_init(&h);
    CU_ASSERT(lbw_list_empty(&h));
    CU_ASSERT(lbw_list_first(&h) == NULL);
    struct item it[4];
    for (int i = 0; i < 4; i++) {
        it[i].v = i;
        lbw_list_init(&it[i].link);
        CU_ASSERT(!lbw_list_linked(&it[i].link));
    }
    lbw_list_add_tail(&h, &it[1].link);
    lbw_list_add_tail(&h, &it[2].link);
    lbw_list_add(&h, &it[0].link);
    lbw_list_add_tail(&h, &it[3].link);
    CU_ASSERT_EQUAL(lbw_list_count(&h), 4);
    int want = 0;
    struct lbw_list *pos, *tmp;
    lbw_list_for_each(pos, &h) CU_ASSERT_EQUAL(lbw_list_entry(pos, struct item, link)->v, want++);
    /* Removing while walking. */
    lbw_list_for_each_safe(pos, tmp, &h)
    {
        if (lbw_list_entry(pos, struct item, link)->v % 2)
            lbw_list_del(pos);
    }
    CU_ASSERT_EQUAL(lbw_list_count(&h), 2);
    CU_ASSERT(!lbw_list_linked(&it[1].link) && lbw_list_linked(&it[2].link));
    lbw_list_del(&it[1].link); /* deleting twice is harmless */
    CU_ASSERT_EQUAL(lbw_list_entry(lbw_list_first(&h), struct item, link)->v, 0);
}

static int open_devnull_taken(void)
{
    _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return TAKE_FD(fd);
}

static int open_devnull_dropped(void)
{
    _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd; /* closed on return */
}

static void test_cleanup(void)
{
    int kept = open_devnull_taken();
    CU_ASSERT(kept >= 0 && fcntl(kept, F_GETFD) >= 0);
    int gone = open_devnull_dropped();
    CU_ASSERT(gone >= 0 && fcntl(gone, F_GETFD) < 0 && errno == EBADF);
    close(kept);
    {
        _cleanup_free_ char *s = strdup("freed at the end of the scope");
        CU_ASSERT(s != NULL);
    }
    _cleanup_free_ char *t = strdup("taken");
    char *owned = TAKE_PTR(t);
    CU_ASSERT(t == NULL && owned != NULL);
    free(owned);
}

static void test_text_clean(void)
{
    char d[16];
    const char evil[] = "a\nb\r\x1b[2J\tc\x7f\xc3\xa9";
    size_t n = lbw_text_clean(d, sizeof(d), evil, sizeof(evil) - 1, 0);
    CU_ASSERT_EQUAL(n, sizeof(evil) - 1);
    CU_ASSERT_STRING_EQUAL(d, "a?b??[2J?c?\xc3\xa9"); /* UTF-8 stays */
    lbw_text_clean(d, sizeof(d), evil, sizeof(evil) - 1, LBW_TEXT_ASCII);
    CU_ASSERT_STRING_EQUAL(d, "a?b??[2J?c???");
    lbw_text_clean(d, sizeof(d), evil, sizeof(evil) - 1,
                   LBW_TEXT_KEEP_TAB | LBW_TEXT_NL_SPACE);
    CU_ASSERT_STRING_EQUAL(d, "a b ?[2J\tc?\xc3\xa9");
    /* cut at cap - 1, at a NUL, at len; in place */
    CU_ASSERT_EQUAL(lbw_text_clean(d, 4, "abcdef", 6, 0), 3);
    CU_ASSERT_STRING_EQUAL(d, "abc");
    CU_ASSERT_EQUAL(lbw_text_clean(d, sizeof(d), "ab\0cd", 5, 0), 2);
    CU_ASSERT_EQUAL(lbw_text_clean(d, sizeof(d), "abcdef", 2, 0), 2);
    CU_ASSERT_STRING_EQUAL(d, "ab");
    char in[] = "x\ny";
    lbw_text_clean(in, sizeof(in), in, 3, 0);
    CU_ASSERT_STRING_EQUAL(in, "x?y");
}

static const struct lbw_test tests[] = {
    {"text: control characters shown as '?', options, cuts", test_text_clean},
    {"buf: append, terminate, consume, steal", test_buf_append_consume},
    {"buf and grow: overflow is refused, nothing changes", test_grow_overflow},
    {"list: add, walk, delete while walking", test_list},
    {"cleanup: fds and memory released unless taken", test_cleanup},
    {NULL, NULL},
};

static int register_base_suites(void)
{
    return lbw_add_suite("base", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_base_suites)
