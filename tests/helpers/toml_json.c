/* toml_json.c — test helper: parses a TOML file with the C reader and
 * prints it as JSON (floats as repr, inf/nan as strings "inf"/"-inf"/"nan"
 * so that JSON can carry them), or "ERROR: <message>" and exit 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "toml.h"

static void emit(struct lbw_jw *w, const struct lbw_toml *v)
{
    switch (v->type) {
    case LBW_TOML_TABLE:
        lbw_jw_obj(w);
        for (size_t i = 0; i < v->u.tab.n; i++) {
            lbw_jw_key(w, v->u.tab.keys[i]);
            emit(w, v->u.tab.vals[i]);
        }
        lbw_jw_obj_end(w);
        break;
    case LBW_TOML_ARRAY:
        lbw_jw_arr(w);
        for (size_t i = 0; i < v->u.arr.n; i++)
            emit(w, v->u.arr.v[i]);
        lbw_jw_arr_end(w);
        break;
    case LBW_TOML_STRING:
        lbw_jw_str(w, v->u.str.s, v->u.str.len);
        break;
    case LBW_TOML_INT:
        lbw_jw_i64(w, v->u.i);
        break;
    case LBW_TOML_FLOAT:
        if (isnan(v->u.f))
            lbw_jw_cstr(w, "nan");
        else if (isinf(v->u.f))
            lbw_jw_cstr(w, v->u.f > 0 ? "inf" : "-inf");
        else
            lbw_jw_double(w, v->u.f);
        break;
    case LBW_TOML_BOOL:
        lbw_jw_bool(w, v->u.b);
        break;
    }
}

int main(int argc, char **argv)
{
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : stdin;
    if (!f)
        return 2;
    char *buf = malloc(1 << 24);
    size_t n = fread(buf, 1, 1 << 24, f);
    char err[300];
    struct lbw_toml *t = lbw_toml_parse(buf, n, err, sizeof(err));
    free(buf);
    if (!t) {
        printf("ERROR: %s\n", err);
        return 1;
    }
    struct lbw_jw w;
    lbw_jw_init(&w);
    emit(&w, t);
    size_t l;
    char *o = lbw_jw_take(&w, &l);
    puts(o);
    free(o);
    lbw_toml_free(t);
    return 0;
}
