/* test_pickle_shapes.c — pickles that would run code in the scheduler's
 * pickle.loads, built only from names upstream's pickles use (and from
 * others): every one is refused by the job loader with the offending
 * global and its offset, alone, inside a job's attributes, inside a list,
 * inside a class's state; while every real vector passes the same check.
 *
 * Cases are written in a small assembly (one token per opcode):
 *   G:mod:name  STACK_GLOBAL of two str     C:mod:name  text GLOBAL
 *   S:text      SHORT_BINUNICODE            B:text      SHORT_BINBYTES
 *   I:n         BININT1                     N           NONE
 *   ( ) ] }     MARK EMPTY_TUPLE EMPTY_LIST EMPTY_DICT
 *   T1 T2 T3 t  tuples                      l d         LIST DICT
 *   R O X b     REDUCE NEWOBJ NEWOBJ_EX BUILD
 *   a e s u     APPEND APPENDS SETITEM SETITEMS
 *   M p:n g:n   MEMOIZE BINPUT BINGET       D P         DUP POP
 *   i:mod:name  INST                        o           OBJ
 *   x:HH        one raw byte (hex)
 * PROTO 4 is prepended (x:80 x:02 after it makes a protocol-2 pickle,
 * where Python 2 names are mapped) and STOP appended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "invocation.h"
#include "pickle.h"
#include "suites.h"

struct pb {
    uint8_t b[8192];
    size_t n;
};

static void put(struct pb *p, const void *s, size_t n)
{
    CU_ASSERT_FATAL(p->n + n <= sizeof(p->b));
    memcpy(p->b + p->n, s, n);
    p->n += n;
}

static void put1(struct pb *p, uint8_t c) { put(p, &c, 1); }

static void pstr(struct pb *p, uint8_t op, const char *s, size_t n)
{
    put1(p, op);
    put1(p, (uint8_t)n);
    put(p, s, n);
}

/* Assembles src (see the header) into p. */
static void assemble(struct pb *p, const char *src)
{
    p->n = 0;
    put(p, "\x80\x04", 2);
    char *dup = strdup(src), *save = NULL;
    for (char *t = strtok_r(dup, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char *a1 = strchr(t, ':'), *a2 = a1 ? strchr(a1 + 1, ':') : NULL;
        size_t l1 = a1 ? (a2 ? (size_t)(a2 - a1 - 1) : strlen(a1 + 1)) : 0;
        if ((t[0] == 'G' || t[0] == 'C' || t[0] == 'i') && a2) {
            if (t[0] == 'G') {
                pstr(p, 0x8c, a1 + 1, l1);
                pstr(p, 0x8c, a2 + 1, strlen(a2 + 1));
                put1(p, 0x93);
            } else {
                put1(p, t[0] == 'C' ? 'c' : 'i');
                put(p, a1 + 1, l1);
                put1(p, '\n');
                put(p, a2 + 1, strlen(a2 + 1));
                put1(p, '\n');
            }
        } else if (t[0] == 'S' && a1) {
            pstr(p, 0x8c, a1 + 1, l1);
        } else if (t[0] == 'B' && a1) {
            pstr(p, 'C', a1 + 1, l1);
        } else if ((t[0] == 'I' || t[0] == 'p' || t[0] == 'g' || t[0] == 'x') && a1) {
            put1(p, t[0] == 'I' ? 'K' : t[0] == 'p' ? 'q' : t[0] == 'g' ? 'h' : 0);
            if (t[0] == 'x')
                p->n--;
            put1(p, (uint8_t)strtoul(a1 + 1, NULL, t[0] == 'x' ? 16 : 10));
        } else if (!strcmp(t, "T1") || !strcmp(t, "T2") || !strcmp(t, "T3")) {
            put1(p, (uint8_t)(0x85 + (t[1] - '1')));
        } else {
            static const char *const one = "N()]}tldRObaesuMDPoX";
            static const uint8_t code[] = {'N', '(', ')', ']', '}', 't', 'l', 'd', 'R', 0x81, 'b',
                                           'a', 'e', 's', 'u', 0x94, '2', '0', 'o', 0x92};
            const char *k = strlen(t) == 1 ? strchr(one, t[0]) : NULL;
            CU_ASSERT_FATAL(k != NULL);
            put1(p, code[k - one]);
        }
    }
    free(dup);
    put1(p, '.');
}

/* The eval chain the issue reports, and friends reaching code. */
#define EVAL_CHAIN                                                                          \
    "G:builtins:getattr G:builtins:getattr G:builtins:getattr S:__self__ T2 R S:eval T2 R " \
    "S:print(1) T1 R"

static const struct {
    const char *src;
    const char *names; /* expected in the message */
} hostile[] = {
    {EVAL_CHAIN, "global builtins.getattr"},
    {"G:builtins:eval S:1+1 T1 R", "global builtins.eval"},
    {"G:builtins:exec S:pass T1 R", "global builtins.exec"},
    {"G:builtins:__import__ S:os T1 R", "global builtins.__import__"},
    {"G:builtins:compile S:x S:f S:exec T3 R", "global builtins.compile"},
    {"G:builtins:open S:/etc/passwd T1 R", "global builtins.open"},
    {"G:builtins:breakpoint ) R", "global builtins.breakpoint"},
    {"G:builtins:globals ) R", "global builtins.globals"},
    {"G:builtins:vars ) R", "global builtins.vars"},
    {"G:builtins:type S:x ) } T3 R", "global builtins.type"},
    {"G:os:system S:id T1 R", "global os.system"},
    {"C:os:system S:id T1 R", "global os.system"},
    {"G:posix:system S:id T1 R", "global posix.system"},
    {"G:nt:system S:id T1 R", "global nt.system"},
    {"G:os:popen S:id T1 R", "global os.popen"},
    {"G:os:execv S:/bin/sh ( S:sh l T2 R", "global os.execv"},
    {"G:subprocess:Popen S:id T1 R", "global subprocess.Popen"},
    {"G:subprocess:check_output S:id T1 R", "global subprocess.check_output"},
    {"G:subprocess:run S:id T1 R", "global subprocess.run"},
    {"G:pty:spawn S:sh T1 R", "global pty.spawn"},
    {"G:importlib:import_module S:os T1 R", "global importlib.import_module"},
    {"G:runpy:_run_code S:x } T2 R", "global runpy._run_code"},
    {"G:code:interact ) R", "global code.interact"},
    {"G:pickle:loads B:x T1 R", "global pickle.loads"},
    {"G:_pickle:loads B:x T1 R", "global _pickle.loads"},
    {"G:marshal:loads B:x T1 R", "global marshal.loads"},
    {"G:types:FunctionType N } T2 R", "global types.FunctionType"},
    {"G:operator:attrgetter S:system T1 R", "global operator.attrgetter"},
    {"G:operator:methodcaller S:system S:id T2 R", "global operator.methodcaller"},
    {"G:functools:partial G:os:system S:id T2 R", "global functools.partial"},
    {"G:functools:reduce G:os:system ( S:id l T2 R", "global functools.reduce"},
    {"G:shutil:rmtree S:/ T1 R", "global shutil.rmtree"},
    {"G:ctypes:CDLL S:libc.so.6 T1 R", "global ctypes.CDLL"},
    {"G:sys:modules", "global sys.modules"},
    {"G:codecs:decode S:x S:rot13 T2 R", "global codecs.decode"},
    {"G:_codecs:encode S:x S:utf8 T2 R", "global _codecs.encode"},
    {"G:copyreg:_reconstructor G:os:_wrap_close G:builtins:object N T3 R",
     "global copyreg._reconstructor"},
    {"G:copyreg:__newobj__ G:builtins:object T1 R", "global copyreg.__newobj__"},
    {"G:copyreg:_reconstructor G:lifeblood.invocationjob:InvocationJob G:builtins:getattr N T3 R",
     "global copyreg._reconstructor"},
    /* getattr: only (<enum class>, 'MEMBER') */
    {"G:builtins:getattr G:lifeblood.enums:WorkerType S:__class__ T2 R", "global builtins.getattr"},
    {"G:builtins:getattr G:lifeblood.enums:WorkerType S:_missing_ T2 R", "global builtins.getattr"},
    {"G:builtins:getattr G:lifeblood.enums:WorkerType S:mro T2 R", "global builtins.getattr"},
    {"G:builtins:getattr G:lifeblood.enums:Enum S:STANDARD T2 R", "global builtins.getattr"},
    {"G:builtins:getattr G:lifeblood.invocationjob:InvocationJob S:X T2 R",
     "global builtins.getattr"},
    {"G:builtins:getattr G:builtins:getattr S:__self__ T2 R", "global builtins.getattr"},
    {"G:builtins:getattr G:os:system S:X T2 R", "global builtins.getattr"},
    {"G:builtins:getattr G:lifeblood.enums:WorkerType S:STANDARD S:X T3 R",
     "global builtins.getattr"},
    {"G:builtins:getattr G:lifeblood.enums:WorkerType S:STANDARD T2 O", "global builtins.getattr"},
    /* the module's other names are not enum classes */
    {"G:lifeblood.enums:os", "global lifeblood.enums.os"},
    {"G:lifeblood.enums:Enum S:x T1 R", "global lifeblood.enums.Enum"},
    {"G:lifeblood.enums:WorkerType ( S:a S:b t R", "global lifeblood.enums.WorkerType"},
    {"G:lifeblood.enums:WorkerType ( l T1 R", "global lifeblood.enums.WorkerType"},
    {"G:lifeblood.enums:WorkerType I:0 T1 R } b", "global lifeblood.enums.WorkerType"},
    /* members an enum does not have: the scheduler's unpickling would fail */
    {"G:lifeblood.enums:WorkerType I:99 T1 R", "global lifeblood.enums.WorkerType"},
    {"G:lifeblood.enums:WorkerType S:STANDARD T1 R", "global lifeblood.enums.WorkerType"},
    {"G:builtins:getattr G:lifeblood.enums:WorkerType S:BOGUS T2 R", "global builtins.getattr"},
    {"G:builtins:getattr G:lifeblood.enums:WorkerState S:STANDARD T2 R", "global builtins.getattr"},
    /* calling the result of an allowed call */
    {"G:builtins:getattr G:lifeblood.enums:WorkerType S:STANDARD T2 R S:x T1 R",
     "a call of a computed value"},
    {"G:re:_compile S:a I:0 T2 R S:x T1 R", "a call of a computed value"},
    /* re._compile: only (pattern, flags), no state */
    {"G:re:_compile S:a I:0 I:0 T3 R", "global re._compile"},
    {"G:re:_compile S:a T1 R", "global re._compile"},
    {"G:re:_compile S:a I:0 T2 R } S:k S:v s b", "global re._compile"},
    {"G:re:_compile " EVAL_CHAIN " I:0 T2 R", "global re._compile"},
    /* classes: only created empty and filled with a dict of str keys */
    {"G:lifeblood.invocationjob:InvocationJob S:x T1 O", "InvocationJob"},
    {"G:lifeblood.invocationjob:InvocationJob S:x T1 R", "InvocationJob"},
    {"G:lifeblood.invocationjob:InvocationJob ) } X", "InvocationJob"},
    {"G:lifeblood.invocationjob:InvocationJob ) O N } T2 b", "InvocationJob"},
    {"G:lifeblood.invocationjob:InvocationJob ) O } I:1 S:v s b", "InvocationJob"},
    {"G:lifeblood.invocationjob:InvocationJob", "InvocationJob"},
    {"G:lifeblood.invocationjob:InvocationJob M ) O } S:k g:0 s b", "InvocationJob"},
    /* builtins that are folded when used as upstream uses them */
    {"G:builtins:set S:abc T1 R", "global builtins.set"},
    {"G:builtins:frozenset ( I:1 t T1 R", "global builtins.frozenset"},
    {"G:builtins:bytearray S:abc T1 R", "global builtins.bytearray"},
    {"G:builtins:object ) R", "global builtins.object"},
    {"G:builtins:set", "global builtins.set"},
    /* names computed through the memo, DUP, text GLOBAL */
    {"S:builtins M S:eval M P P g:0 g:1 x:93 S:1 T1 R", "global builtins.eval"},
    {"S:os D P S:system x:93 S:id T1 R", "global os.system"},
    {"x:80 x:02 C:__builtin__:eval S:1 T1 R", "global builtins.eval"},
    {"x:80 x:02 C:copy_reg:_reconstructor G:os:_wrap_close G:builtins:object N T3 R",
     "global copyreg._reconstructor"},
    /* memo: a global from an allowed call reused in a bad one */
    {"] G:builtins:getattr M G:lifeblood.enums:WorkerType S:STANDARD T2 R a g:0 G:os:system S:x "
     "T2 R a",
     "global builtins.getattr"},
    {"] G:lifeblood.enums:WorkerType M I:0 T1 R a g:0 a", "global lifeblood.enums.WorkerType"},
    /* opcodes that import or call by themselves */
    {"( S:id i:os:system", "INST"},
    {"( G:os:system S:id o", "OBJ"},
    {"S:x x:50", "PERSID"},
    {"S:x x:51", "BINPERSID"},
    {"x:82 x:01", "EXT1"},
};

/* Where a hostile value sits: alone, in a job's attributes, in a list
 * there, in an InvocationEnvironment's state. */
static const char *const wrappers[] = {
    "%s",
    "G:lifeblood.invocationjob:InvocationJob ) O } S:_InvocationJob__attrs } S:x %s s s b",
    "G:lifeblood.invocationjob:InvocationJob ) O } S:_InvocationJob__attrs } S:x ] %s a s s b",
    "G:lifeblood.invocationjob:InvocationJob ) O } S:_InvocationJob__env "
    "G:lifeblood.invocationjob:InvocationEnvironment ) O } S:q ( %s t s b s b",
};

static void test_hostile_refused(void)
{
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        for (size_t w = 0; w < sizeof(wrappers) / sizeof(wrappers[0]); w++) {
            char src[2048];
            snprintf(src, sizeof(src), wrappers[w], hostile[i].src);
            struct pb p;
            assemble(&p, src);
            struct lbw_inv inv;
            char err[400] = "";
            int rc = lbw_inv_load(&inv, p.b, p.n, err, sizeof(err));
            lbw_inv_free(&inv);
            int named = strstr(err, hostile[i].names) != NULL && strstr(err, "offset") != NULL;
            if (rc != -1 || !named)
                fprintf(stderr, "case %zu/%zu (%s): rc %d, %s\n", i, w, src, rc, err);
            CU_ASSERT(rc == -1 && named);
        }
    }
}

/* The shapes upstream uses pass, alone and nested. */
static void test_upstream_shapes_pass(void)
{
    static const char *const ok[] = {
        "G:builtins:getattr G:lifeblood.enums:WorkerType S:STANDARD T2 R",
        "G:builtins:getattr G:lifeblood.enums:WorkerType S:SCHEDULER_HELPER T2 R",
        "G:lifeblood.enums:WorkerType I:1 T1 R",
        "G:lifeblood.enums:InvocationMessageResult S:delivered T1 R",
        "G:re:_compile B:ALF_PROGRESS I:0 T2 R",
        "G:re:_compile S:x I:32 T2 R",
        "G:lifeblood.invocationjob:InvocationJob ) O } S:k S:v s b",
        "G:lifeblood.invocationjob:InvocationJob ) O",
        "x:80 x:02 C:copy_reg:_reconstructor C:lifeblood_connection:TaskSpawn "
        "C:__builtin__:object N T3 R } S:k S:v s b",
        "G:builtins:set ( I:1 l T1 R",
        "G:builtins:frozenset ) R",
        "G:builtins:bytearray B:ab T1 R",
        "G:_codecs:encode S:ab S:latin1 T2 R",
        "] G:re:_compile M S:a I:0 T2 R a g:0 S:b I:0 T2 R a",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct pb p;
        assemble(&p, ok[i]);
        struct lbw_pk_doc d;
        char err[400] = "";
        int rc = lbw_pk_decode(&d, p.b, p.n, NULL, err, sizeof(err));
        if (rc == 0)
            rc = lbw_pk_check_upstream(&d, d.root, err, sizeof(err));
        if (rc)
            fprintf(stderr, "ok case %zu (%s): %s\n", i, ok[i], err);
        CU_ASSERT(rc == 0);
        lbw_pk_doc_free(&d);
    }
}

static void test_vectors_pass(void)
{
    static const char *const all[] = {
        "invocationjob_minimal", "invocationjob_minimal_enum_by_value",
        "invocationjob_minimal_finished", "invocationjob_cancelled",
        "invocationjob_killed_by_signal", "invocationjob_full", "invocationjob_full_finished",
        "invocationjob_large", "workerresources", "workerresources_float",
        "environmentresolverarguments", "taskspawn_runtime", "taskspawn_runtime_envargs",
        "taskspawn_forwarded", "taskspawn_forwarded_envargs", "newtask",
        "capture_workerresources", "capture_task_from_scheduler", "capture_done_from_worker",
        "capture_dropped_from_worker", "capture_spawn_forwarded",
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        char rel[200];
        snprintf(rel, sizeof(rel), "pickles/%s.pickle", all[i]);
        size_t n;
        uint8_t *b = fx_read(rel, &n);
        CU_ASSERT_FATAL(b != NULL);
        struct lbw_pk_doc d;
        char err[400] = "";
        int rc = lbw_pk_decode(&d, b, n, NULL, err, sizeof(err));
        if (rc == 0)
            rc = lbw_pk_check_upstream(&d, d.root, err, sizeof(err));
        if (rc)
            fprintf(stderr, "%s: %s\n", all[i], err);
        CU_ASSERT(rc == 0);
        lbw_pk_doc_free(&d);
        free(b);
    }
}

static const struct lbw_test tests[] = {
    {"code-execution shapes refused, named, anywhere", test_hostile_refused},
    {"upstream's own shapes pass", test_upstream_shapes_pass},
    {"every real vector passes", test_vectors_pass},
    {NULL, NULL},
};

static int register_pickle_shapes_suites(void)
{
    return lbw_add_suite("pickle shapes", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_pickle_shapes_suites)
