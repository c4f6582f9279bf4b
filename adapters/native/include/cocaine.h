/*
 * cocaine.h: the native app ABI of Cocaine (docs/protocol.md §9).
 *
 * A native app is a shared library (C, C++, Rust...) that exports the four functions below.
 * The node runs it in one of two ways, chosen by the manifest's engine.backend:
 *   - "process": a host program (cocaine-native-host) loads the library in a child process;
 *   - "thread":  the node loads the library itself and runs each worker on a thread of its
 *                own, inside the node's process.
 * Either way the library sees the same calls, and pool sizing, concurrency, timeouts and
 * stats work as for any other worker.
 *
 * Lifecycle. Each worker loads the library, checks cocaine_abi_version(), and creates ONE
 * instance with cocaine_create(). It then calls cocaine_handle() once per job, and calls
 * cocaine_destroy() when the worker ends and no call of cocaine_handle() runs any more.
 *
 * Threads. An instance belongs to one worker:
 *   - cocaine_handle() runs on threads the host chooses (not always the same one) and at
 *     most `concurrency` (the manifest's engine.concurrency, 1 by default) calls run at once
 *     on one instance. With the default, calls on an instance never overlap, so an instance
 *     needs no locking of its own.
 *   - cocaine_create() and cocaine_destroy() never run at the same time as any other call
 *     on the same instance.
 *   - With backend "thread", several instances of the library (one per worker) live in the
 *     same process and run at the same time: global state of the library must be
 *     thread-safe, or avoided.
 *   - The job callbacks (struct cocaine_job_ops) may only be called on the thread running
 *     the cocaine_handle() call they were given to, and only until it returns.
 *
 * Timeouts and cancels. When the node cancels a job (the client cancelled, or its timeout
 * or deadline passed) the job's read() returns -1 (or 0) and its write() returns -1: the
 * handler should return soon. A handler that does not return within the engine's
 * termination-timeout gets its worker killed. With backend "process" that is the host
 * process. A thread cannot be killed: its worker is retired instead (the node reports it as
 * exited and closes its channel) and the thread is left to finish the call on its own; what
 * it writes then is discarded, and its instance is destroyed when the call returns. A
 * handler that never returns keeps that thread (and its CPU) until the node exits, so code
 * that may hang belongs on backend "process".
 *
 * Errors. Nothing may be thrown or unwound out of these functions (catch C++ exceptions and
 * Rust panics inside). Strings are NUL-terminated UTF-8.
 *
 * This header is C89 and has no dependencies beyond <stddef.h>.
 */
#ifndef COCAINE_H
#define COCAINE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes; cocaine_abi_version() must return it. The host
 * refuses a library that returns any other value. */
#define COCAINE_ABI_VERSION 1

/* An app instance: defined by the library, opaque to the host. */
typedef struct cocaine_app cocaine_app;

/* One job: defined by the host, opaque to the library. */
typedef struct cocaine_job cocaine_job;

/* What a handler can do with its job. */
typedef struct cocaine_job_ops {
    /* The next chunk of the request. Returns 1 and sets *data and *size (the bytes stay
     * valid until the next read() on this job or the return of cocaine_handle()); returns
     * 0 at the end of the request (*data = NULL, *size = 0); returns -1 if the job was
     * cancelled. Blocks until a chunk, the end or the cancel comes. */
    int (*read)(cocaine_job *job, const void **data, size_t *size);

    /* Sends one reply chunk to the client at once. Returns 0, or -1 if the job was
     * cancelled, already ended with error(), or the node is gone: then stop and return. */
    int (*write)(cocaine_job *job, const void *data, size_t size);

    /* Ends the job with an error (code: e.g. 400, 404, 500, 502; message: NUL-terminated
     * UTF-8). After it, write() fails and what cocaine_handle() returns does not matter.
     * Returns 0, or -1 as write() does. */
    int (*error)(cocaine_job *job, unsigned int code, const char *message);
} cocaine_job_ops;

/* Returns COCAINE_ABI_VERSION, as the library was built. */
unsigned int cocaine_abi_version(void);

/* Creates an instance. `args` is the manifest's `args` as written (for example
 * "local:///srv/apps/libecho.so"). On success returns 0 and stores the instance in *app.
 * On failure returns non-zero and writes a NUL-terminated reason into `error` (at most
 * `error_size` bytes, the NUL included); the node reports it and the app cannot start. */
int cocaine_create(const char *args, cocaine_app **app, char *error, size_t error_size);

/* Handles one job for `event` (the task's name, or the event the client named). Reads the
 * request with ops->read, writes the reply with ops->write. Returning 0 ends the reply
 * successfully (unless ops->error was called); returning non-zero without calling
 * ops->error fails the job with 502. An event the app does not know should get
 * ops->error(job, 404, ...). */
int cocaine_handle(cocaine_app *app, const char *event, const cocaine_job_ops *ops,
                   cocaine_job *job);

/* Destroys an instance made by cocaine_create(). */
void cocaine_destroy(cocaine_app *app);

#ifdef __cplusplus
}
#endif

#endif /* COCAINE_H */
