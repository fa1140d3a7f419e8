#include "common/err.h"

struct entry {
    int code;
    int http;
    const char *name;
    const char *msg;
};

static const struct entry table[] = {
#define OAI_ERR_ROW(name, http, msg) {OAI_E##name, http, #name, msg},
    OAI_ERR_MAP(OAI_ERR_ROW)
#undef OAI_ERR_ROW
};

static const struct entry *find(int err)
{
    for (unsigned i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == err)
            return &table[i];
    return &table[1]; /* INTERNAL */
}

int err_http(int err)
{
    return find(err)->http;
}

const char *err_message(int err)
{
    return find(err)->msg;
}

const char *err_name(int err)
{
    return err == 0 ? "OK" : find(err)->name;
}
