/*
 * log.h - one line per event on stderr (the web server's error log).
 *
 * Never pass a secret or prompt text; identify keys and users by log_hash().
 */
#ifndef OAI_LOG_H
#define OAI_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* log_set_level sets the threshold; log_parse_level maps "debug".."error", -1 if unknown. */
void log_set_level(enum log_level lvl);
int log_parse_level(const char *s);
int log_enabled(enum log_level lvl);

__attribute__((format(printf, 2, 3))) void log_msg(enum log_level lvl, const char *fmt, ...);

/* log_hash writes the first 12 hex digits of SHA-256(data) to out[13]: safe to log. */
void log_hash(const void *data, size_t len, char out[13]);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
