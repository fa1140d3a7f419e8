/*
 * catalog.h - the built-in catalogue of Claude models (SPEC §5 "Models", §11, §12): each
 * entry's Anthropic API id, short alias, Vertex id, Bedrock id, family and flags.
 *
 * Client names resolve through MODEL_ALIASES first, then the catalogue (API id, alias, Vertex
 * id, Bedrock id with or without an inference-profile prefix, ARN). Provider-native ids are
 * sent upstream verbatim; when one is in the catalogue it takes that entry's family and flags.
 */
#ifndef OAI_CATALOG_H
#define OAI_CATALOG_H

#include <stddef.h>

enum catalog_flag {
    CAT_OPUS = 1,              /* the -opus families */
    CAT_NO_TEMP_AND_TOP_P = 2, /* refuses temperature together with top_p: drop top_p */
    CAT_THINKING = 4,          /* supports extended thinking */
    CAT_LEGACY = 8,            /* kept so that older names resolve; not listed in /models */
    CAT_PROFILE = 16,          /* Bedrock serves it on demand only through an inference profile */
};

struct catalog_model {
    const char *api_id;  /* claude-sonnet-4-5-20250929 */
    const char *alias;   /* claude-sonnet-4-5 */
    const char *vertex;  /* claude-sonnet-4-5@20250929 */
    const char *bedrock; /* anthropic.claude-sonnet-4-5-20250929-v1:0 */
    int flags;
    long created; /* Unix seconds, for /models */
};

enum catalog_provider { CATALOG_VERTEX, CATALOG_BEDROCK };

struct catalog_resolved {
    const struct catalog_model *model; /* NULL for an unknown provider-native id */
    char upstream_id[256];             /* what goes into the upstream URL */
    char family[32];                   /* gcp-claude, gcp-claude-opus, aws-claude, ... */
    int flags;
    int native; /* the client sent a provider-native id: it goes upstream as it is */
};

/* catalog_find looks a name up among every id of every entry (no aliases, no prefixes
 * stripped beyond Bedrock inference-profile prefixes and ARNs). NULL when unknown. */
const struct catalog_model *catalog_find(const char *name);

/* catalog_resolve maps a client model name for provider: MODEL_ALIASES (aliases, may be NULL:
 * "alias=target,...") first, then provider-native ids verbatim, then the catalogue. Returns 0,
 * or -1 when the name is unknown (the caller answers 404 model_not_found). */
int catalog_resolve(const char *name, const char *aliases, enum catalog_provider provider,
                    struct catalog_resolved *out);

/* catalog_count and catalog_at walk the table (legacy entries included; check CAT_LEGACY). */
size_t catalog_count(void);
const struct catalog_model *catalog_at(size_t i);

#endif
