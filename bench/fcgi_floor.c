/*
 * fcgi_floor.c - the floor of the benchmark: the cheapest FastCGI responder that does what a
 * gateway request minimally does (accept, read the whole body, answer a fixed ~1 KB JSON body),
 * with the same process shape as oai-fcgi (threads accepting on the socket lighttpd passes on
 * fd 0). Behind the same lighttpd config it shows what the web-server hop itself costs, so the
 * gateway's own cost can be told apart from it.
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define THREADS 8

static const char reply[] =
    "{\"id\":\"chatcmpl-floor\",\"object\":\"chat.completion\",\"created\":1795680000,"
    "\"model\":\"claude-sonnet-4-5\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor "
    "in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur "
    "sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est "
    "laborum.\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":"
    "{\"prompt_tokens\":12,\"completion_tokens\":120,\"total_tokens\":132}}";

static void *serve(void *arg)
{
    (void)arg;
    FCGX_Request rq;
    if (FCGX_InitRequest(&rq, 0, 0) != 0)
        return NULL;
    for (;;) {
        if (FCGX_Accept_r(&rq) < 0)
            break;
        char buf[16384];
        while (FCGX_GetStr(buf, sizeof buf, rq.in) > 0)
            ;
        FCGX_FPrintF(rq.out,
                     "Status: 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n", /* FCGX_FPrintF knows no %zu */
                     (int)sizeof reply - 1);
        FCGX_PutStr(reply, (int)sizeof reply - 1, rq.out);
        FCGX_Finish_r(&rq);
    }
    return NULL;
}

int main(void)
{
    if (FCGX_Init() != 0)
        return 1;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, serve, NULL) != 0)
            return 1;
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}
