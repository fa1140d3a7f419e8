/*
 * cidr.h - IP allow/deny lists for the gatekeeper (IP_BLACKLIST): a comma list of IPv4 and IPv6
 * addresses and CIDR ranges, e.g. "10.0.0.0/8, 192.168.1.7, 2001:db8::/32, ::1".
 *
 * Entries are trimmed; empty entries are ignored; a bare address is a /32 (IPv4) or /128 (IPv6).
 * Both sides are compared as IPv6, IPv4 as its mapped form ::ffff:a.b.c.d, so a mapped address
 * matches an IPv4 entry and an IPv4 address matches a mapped entry. Lists are parsed on every
 * call (they are short); nothing is allocated.
 */
#ifndef OAI_CIDR_H
#define OAI_CIDR_H

#include <stddef.h>

/* cidr_list_valid checks that every entry of the comma list (may be NULL: valid) is an
 * address or address/prefix with the prefix in range (0..32 for IPv4, 0..128 for IPv6).
 * Returns 0, or -1 with the first bad entry quoted in why (a caller-owned buffer of n bytes). */
__attribute__((warn_unused_result)) int cidr_list_valid(const char *list, char *why, size_t n);

/* cidr_list_match says whether ip (text as REMOTE_ADDR or an X-Forwarded-For entry gives it,
 * surrounding white space allowed) lies inside any entry of list: 1 or 0. An unparsable ip, a
 * NULL or empty list, or a list holding only invalid entries gives 0 (invalid entries are
 * skipped; cidr_list_valid reports them at start-up). */
int cidr_list_match(const char *list, const char *ip);

#endif
