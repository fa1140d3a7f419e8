/* Unit tests for gate/cidr: list validation and matching of IPv4, IPv6 and mapped addresses. */
#include <string.h>

#include "gate/cidr.h"
#include "tests/unit/tap.h"

struct match_case {
    const char *list, *ip;
    int want;
};

static const struct match_case matches[] = {
    /* IPv4 prefixes at their boundaries */
    {"0.0.0.0/0", "203.0.113.9", 1},
    {"0.0.0.0/0", "255.255.255.255", 1},
    {"10.0.0.0/8", "10.0.0.0", 1},
    {"10.0.0.0/8", "10.255.255.255", 1},
    {"10.0.0.0/8", "11.0.0.0", 0},
    {"10.0.0.0/8", "9.255.255.255", 0},
    {"10.1.2.3/8", "10.200.0.1", 1}, /* host bits in the entry are ignored */
    {"192.168.1.6/31", "192.168.1.6", 1},
    {"192.168.1.6/31", "192.168.1.7", 1},
    {"192.168.1.6/31", "192.168.1.5", 0},
    {"192.168.1.6/31", "192.168.1.8", 0},
    {"192.168.1.7/32", "192.168.1.7", 1},
    {"192.168.1.7/32", "192.168.1.6", 0},
    {"192.168.1.7", "192.168.1.7", 1},
    {"192.168.1.7", "192.168.1.70", 0},
    {"172.16.0.0/12", "172.31.255.255", 1},
    {"172.16.0.0/12", "172.32.0.0", 0},
    /* IPv6 prefixes at their boundaries */
    {"::/0", "2001:db8::1", 1},
    {"::/0", "::", 1},
    {"2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1},
    {"2001:db8::/32", "2001:db9::", 0},
    {"2001:db8::/32", "2001:db7:ffff::", 0},
    {"2001:db8::/127", "2001:db8::1", 1},
    {"2001:db8::/127", "2001:db8::", 1},
    {"2001:db8::/127", "2001:db8::2", 0},
    {"2001:db8::1/128", "2001:db8::1", 1},
    {"2001:db8::1/128", "2001:db8::0", 0},
    {"::1", "::1", 1},
    {"::1", "0:0:0:0:0:0:0:1", 1}, /* another spelling of the same address */
    {"::1", "::2", 0},
    {"2001:DB8::A", "2001:db8::a", 1},
    {"fe80::/10", "febf::1", 1},
    {"fe80::/10", "fec0::1", 0},
    /* IPv4-mapped IPv6 on either side */
    {"10.0.0.0/8", "::ffff:10.9.8.7", 1},
    {"10.0.0.0/8", "::ffff:11.0.0.1", 0},
    {"192.168.1.7", "::ffff:192.168.1.7", 1},
    {"192.168.1.7", "::FFFF:c0a8:107", 1},
    {"::ffff:192.168.1.7", "192.168.1.7", 1},
    {"::ffff:10.0.0.0/104", "10.3.4.5", 1},
    {"::ffff:10.0.0.0/104", "11.3.4.5", 0},
    {"0.0.0.0/0", "::ffff:1.2.3.4", 1},
    {"0.0.0.0/0", "2001:db8::1", 0}, /* every IPv4 address, but no IPv6 one */
    {"::1", "0.0.0.1", 0},           /* ::1 is not ::ffff:0.0.0.1 */
    {"2001:db8::/32", "10.0.0.1", 0},
    /* lists, spaces, empty and invalid entries */
    {"10.0.0.0/8, 192.168.1.7, 2001:db8::/32, ::1", "192.168.1.7", 1},
    {"10.0.0.0/8, 192.168.1.7, 2001:db8::/32, ::1", "2001:db8::42", 1},
    {"10.0.0.0/8, 192.168.1.7, 2001:db8::/32, ::1", "::1", 1},
    {"10.0.0.0/8, 192.168.1.7, 2001:db8::/32, ::1", "192.168.1.8", 0},
    {"  10.0.0.0/8 ,\t::1  ", "10.1.1.1", 1},
    {",,10.0.0.0/8,,", "10.1.1.1", 1},
    {"bogus, 10.0.0.0/8", "10.1.1.1", 1}, /* an invalid entry is skipped */
    {"1.2.3.0/33, 1.2.3.4/", "1.2.3.4", 0},
    {"10.0.0.0/8", "  10.1.1.1 ", 1},
    {"10.0.0.0/8", "\t10.1.1.1", 1},
    {"", "10.1.1.1", 0},
    {" , ,", "10.1.1.1", 0},
    {NULL, "10.1.1.1", 0},
    /* unparsable client addresses */
    {"0.0.0.0/0, ::/0", "", 0},
    {"0.0.0.0/0, ::/0", "   ", 0},
    {"0.0.0.0/0, ::/0", "not-an-ip", 0},
    {"0.0.0.0/0, ::/0", "10.0.0.1/8", 0},
    {"0.0.0.0/0, ::/0", "10.0.0.256", 0},
    {"0.0.0.0/0, ::/0", "10.0.0.1, 10.0.0.2", 0},
    {"0.0.0.0/0, ::/0", "10.0.0", 0},
    {"0.0.0.0/0, ::/0", NULL, 0},
};

struct valid_case {
    const char *list;
    int want;        /* 0 or -1 */
    const char *why; /* a part of the reason, or NULL */
};

static const struct valid_case valids[] = {
    {"10.0.0.0/8, 192.168.1.7, 2001:db8::/32, ::1", 0, NULL},
    {"0.0.0.0/0,::/0,1.2.3.4/32,::1/128,::ffff:1.2.3.4/128", 0, NULL},
    {"", 0, NULL},
    {NULL, 0, NULL},
    {" , 10.0.0.0/8 ,, ", 0, NULL},
    {"1.2.3.4/33", -1, "entry 1 \"1.2.3.4/33\""},
    {"1.2.3.4/33", -1, "over 32"},
    {"::/129", -1, "over 128"},
    {"::ffff:1.2.3.4/129", -1, "over 128"},
    {"10.0.0.0/8, 1.2.3.4/", -1, "entry 2 \"1.2.3.4/\""},
    {"/8", -1, "\"/8\""},
    {"10.0.0.0/-8", -1, "prefix"},
    {"10.0.0.0/+8", -1, "prefix"},
    {"10.0.0.0/8 ", 0, NULL},
    {"10.0.0.0 /8", -1, "not an IP address"},
    {"10.0.0.0/1000", -1, "prefix"},
    {"10.0.0.0/8/8", -1, "prefix"},
    {"10.0.0", -1, "not an IP address"},
    {"256.0.0.1", -1, "not an IP address"},
    {"2001:db8:::1", -1, "not an IP address"},
    {"garbage", -1, "entry 1 \"garbage\" is not an IP address"},
    {"10.0.0.1, , garbage", -1, "entry 3"},
    {"example.com", -1, "not an IP address"},
    {"fe80::1%eth0", -1, "not an IP address"},
    {"0123456789012345678901234567890123456789012345678901234567890123456789", -1,
     "not an IP address"},
};

static void test_match(void)
{
    for (unsigned i = 0; i < sizeof matches / sizeof matches[0]; i++) {
        const struct match_case *c = &matches[i];
        char name[160];
        snprintf(name, sizeof name, "\"%s\" %s \"%s\"", c->ip ? c->ip : "(null)",
                 c->want ? "in" : "not in", c->list ? c->list : "(null)");
        is_int(cidr_list_match(c->list, c->ip), c->want, name);
    }
}

static void test_valid(void)
{
    for (unsigned i = 0; i < sizeof valids / sizeof valids[0]; i++) {
        const struct valid_case *c = &valids[i];
        char name[160], why[128] = "";
        snprintf(name, sizeof name, "\"%s\" is %s", c->list ? c->list : "(null)",
                 c->want ? "invalid" : "valid");
        is_int(cidr_list_valid(c->list, why, sizeof why), c->want, name);
        if (c->why)
            has_str(why, c->why, "  and the reason names it");
    }
    char tiny[8];
    ok(cidr_list_valid("bogus", tiny, sizeof tiny) == -1 && strlen(tiny) == sizeof tiny - 1,
       "the reason is truncated to the buffer");
    ok(cidr_list_valid("bogus", NULL, 0) == -1, "no reason buffer is fine");
}

int main(void)
{
    tap_start();
    test_match();
    test_valid();
    return tap_done();
}
