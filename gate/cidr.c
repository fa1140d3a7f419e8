#include "gate/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

/* Longer than any address worth parsing: a full IPv6 address with an IPv4 tail and "/128". */
#define ENTRY_MAX 64

/* One entry in the 128-bit space: IPv4 as ::ffff:a.b.c.d with its prefix length plus 96. */
struct range {
    unsigned char addr[16];
    int bits;
};

/* parse_addr parses NUL-terminated address text into 16 bytes (IPv4 as its mapped form);
 * *v4 says it was IPv4. 0 or -1. */
static int parse_addr(const char *s, unsigned char out[16], int *v4)
{
    unsigned char b4[4];
    *v4 = 0;
    if (inet_pton(AF_INET, s, b4) == 1) {
        memset(out, 0, 10);
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, b4, 4);
        *v4 = 1;
        return 0;
    }
    return inet_pton(AF_INET6, s, out) == 1 ? 0 : -1;
}

/* parse_range parses one trimmed entry e[0..len) into r. Returns NULL, or what is wrong. */
static const char *parse_range(const char *e, size_t len, struct range *r)
{
    char text[ENTRY_MAX];
    if (len >= sizeof text)
        return "is not an IP address or CIDR range";
    memcpy(text, e, len);
    text[len] = '\0';
    int bits = -1;
    char *slash = strchr(text, '/');
    if (slash) {
        *slash = '\0';
        const char *d = slash + 1;
        size_t nd = strlen(d);
        if (nd == 0 || nd > 3 || strspn(d, "0123456789") != nd)
            return "has no valid prefix length after /";
        bits = 0;
        for (; *d; d++)
            bits = bits * 10 + (*d - '0');
    }
    int v4;
    if (parse_addr(text, r->addr, &v4))
        return "is not an IP address or CIDR range";
    if (v4 && bits > 32)
        return "has a prefix length over 32 for IPv4";
    if (bits > 128)
        return "has a prefix length over 128 for IPv6";
    if (bits < 0)
        bits = v4 ? 32 : 128;
    r->bits = v4 ? bits + 96 : bits;
    return NULL;
}

/* inside says whether the 16-byte address a lies in r. */
static int inside(const struct range *r, const unsigned char a[16])
{
    size_t full = (size_t)r->bits / 8;
    int rest = r->bits % 8;
    if (memcmp(r->addr, a, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (r->addr[full] & mask) == (a[full] & mask);
}

int cidr_list_valid(const char *list, char *why, size_t n)
{
    const char *e;
    size_t len;
    for (int idx = 1; util_list_next(&list, &e, &len); idx++) {
        struct range r;
        const char *bad = len ? parse_range(e, len, &r) : NULL;
        if (bad) {
            if (why && n)
                snprintf(why, n, "entry %d \"%.*s\" %s", idx,
                         len > ENTRY_MAX ? ENTRY_MAX : (int)len, e, bad);
            return -1;
        }
    }
    return 0;
}

int cidr_list_match(const char *list, const char *ip)
{
    if (!list || !ip)
        return 0;
    ip += strspn(ip, " \t");
    size_t len = strlen(ip);
    while (len > 0 && (ip[len - 1] == ' ' || ip[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= ENTRY_MAX)
        return 0;
    char text[ENTRY_MAX];
    memcpy(text, ip, len);
    text[len] = '\0';
    unsigned char a[16];
    int v4;
    if (parse_addr(text, a, &v4))
        return 0;
    const char *e;
    while (util_list_next(&list, &e, &len)) {
        struct range r;
        if (len && !parse_range(e, len, &r) && inside(&r, a))
            return 1;
    }
    return 0;
}
