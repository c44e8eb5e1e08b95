/* list.h — the one intrusive doubly linked list (circular, with a head
 * node), used wherever objects queue or wait: connections, pending sends,
 * mailboxes, peers.
 *
 *   struct lbw_list head; lbw_list_init(&head);
 *   struct conn { struct lbw_list link; ... };
 *   lbw_list_add_tail(&head, &c->link);
 *   lbw_list_for_each_safe(pos, tmp, &head) { struct conn *c = lbw_list_entry(pos, struct conn, link); ... }
 */
#ifndef LBW_LIST_H
#define LBW_LIST_H

#include <stddef.h>

struct lbw_list {
    struct lbw_list *prev, *next;
};

#define lbw_list_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void lbw_list_init(struct lbw_list *h)
{
    h->prev = h->next = h;
}

static inline int lbw_list_empty(const struct lbw_list *h)
{
    return h->next == h;
}

/* 1 if the node is linked in some list (nodes are kept self-linked when
 * unlinked: init them, and lbw_list_del re-inits). */
static inline int lbw_list_linked(const struct lbw_list *n)
{
    return n->next && n->next != n;
}

static inline void lbw_list_insert_(struct lbw_list *n, struct lbw_list *prev,
                                    struct lbw_list *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void lbw_list_add(struct lbw_list *h, struct lbw_list *n)
{
    lbw_list_insert_(n, h, h->next);
}

static inline void lbw_list_add_tail(struct lbw_list *h, struct lbw_list *n)
{
    lbw_list_insert_(n, h->prev, h);
}

static inline void lbw_list_del(struct lbw_list *n)
{
    if (n->next) {
        n->prev->next = n->next;
        n->next->prev = n->prev;
    }
    n->prev = n->next = n;
}

static inline struct lbw_list *lbw_list_first(const struct lbw_list *h)
{
    return lbw_list_empty(h) ? NULL : h->next;
}

static inline size_t lbw_list_count(const struct lbw_list *h)
{
    size_t n = 0;
    for (const struct lbw_list *p = h->next; p != h; p = p->next)
        n++;
    return n;
}

#define lbw_list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define lbw_list_for_each_safe(pos, tmp, head)                                         \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                   \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
