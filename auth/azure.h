/*
 * azure.h - Azure OpenAI deployments from AZURE_CREDENTIALS: comma-separated
 * resourceName:deploymentId:apiKey (several deployments of one resource allowed). Parsed once
 * per process and distinct value.
 */
#ifndef OAI_AZURE_AUTH_H
#define OAI_AZURE_AUTH_H

#include <stddef.h>

struct azure_deployment {
    char *resource, *deployment, *api_key;
    char hash[13]; /* log_hash of resource/deployment: how logs name this key */
};

struct azure_deployments {
    struct azure_deployment *v;
    int n;
};

/* azure_deployments_get returns the parsed deployments (NULL or "" gives n = 0), living until
 * azure_deployments_cleanup; NULL with a message naming the variable and entry on a bad entry. */
const struct azure_deployments *azure_deployments_get(const char *credentials, char *err,
                                                      size_t errlen);
void azure_deployments_cleanup(void);

#endif
