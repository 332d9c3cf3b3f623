/* LD_PRELOAD for tests: fork(2) and pthread_create(3) fail with EAGAIN, as
 * at systemd's TasksMax or RLIMIT_NPROC, while the file named by
 * REFUSE_FORK_FLAG or REFUSE_THREAD_FLAG exists. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static int refused(const char *variable) {
    const char *flag = getenv(variable);
    return flag != NULL && access(flag, F_OK) == 0;
}

pid_t fork(void) {
    static pid_t (*real)(void);
    if (refused("REFUSE_FORK_FLAG")) {
        errno = EAGAIN;
        return -1;
    }
    if (real == NULL) {
        real = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
    }
    return real();
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                   void *arg) {
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (refused("REFUSE_THREAD_FLAG")) {
        return EAGAIN;
    }
    if (real == NULL) {
        real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(
            RTLD_NEXT, "pthread_create");
    }
    return real(thread, attr, start, arg);
}
