// The echo app as a native Cocaine app in C++ (the ABI of adapters/native/include/cocaine.h).
// Build it with ./build (makes libecho.so beside this file); manifests/native-echo-thread.json
// and manifests/native-echo-process.json run it on each backend.
//
// Events:
//   echo   writes each request chunk back as it arrives;
//   sleep  sleeps the number of milliseconds in the request, then replies with it; it does
//          not look for cancels, so it shows what happens to a job that overruns;
//   spin   like sleep but checks for a cancel every 10 ms (write fails once cancelled) and
//          returns then;
//   fail   fails with the code in the request if it is a number, else with 502;
//   throw  throws a C++ exception, caught here and reported as 500 (nothing may unwind
//          into the host);
//   args   replies with the args the instance was created with;
//   count  replies with how many jobs this instance has handled (one instance per worker);
//   other  404.

#include "cocaine.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

struct cocaine_app {
    std::string args;
    // Calls on one instance never overlap with the default concurrency of 1 (cocaine.h), so
    // a plain counter is enough.
    unsigned long jobs = 0;
};

namespace {

std::string read_all(const cocaine_job_ops *ops, cocaine_job *job) {
    std::string body;
    const void *data = nullptr;
    size_t size = 0;
    while (ops->read(job, &data, &size) == 1) {
        body.append(static_cast<const char *>(data), size);
    }
    return body;
}

int reply(const cocaine_job_ops *ops, cocaine_job *job, const std::string &text) {
    return ops->write(job, text.data(), text.size()) == 0 ? 0 : 1;
}

unsigned long to_ms(const std::string &body) {
    return std::strtoul(body.c_str(), nullptr, 10);
}

int handle(cocaine_app *app, const std::string &event, const cocaine_job_ops *ops,
           cocaine_job *job) {
    app->jobs += 1;
    if (event == "echo") {
        const void *data = nullptr;
        size_t size = 0;
        int got;
        while ((got = ops->read(job, &data, &size)) == 1) {
            if (ops->write(job, data, size) != 0) {
                return 0;  // cancelled: nothing more to do
            }
        }
        return 0;
    }
    if (event == "sleep") {
        std::string body = read_all(ops, job);
        std::this_thread::sleep_for(std::chrono::milliseconds(to_ms(body)));
        return reply(ops, job, body);
    }
    if (event == "spin") {
        std::string body = read_all(ops, job);
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(to_ms(body));
        while (std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            // An empty chunk is a cheap probe: it fails once the job is cancelled.
            if (ops->write(job, "", 0) != 0) {
                return 0;
            }
        }
        return reply(ops, job, body);
    }
    if (event == "fail") {
        std::string body = read_all(ops, job);
        char *end = nullptr;
        unsigned long code = std::strtoul(body.c_str(), &end, 10);
        if (body.empty() || end == nullptr || *end != '\0') {
            ops->error(job, 502, ("failed on \"" + body + "\"").c_str());
        } else {
            ops->error(job, static_cast<unsigned int>(code),
                       ("failed with " + std::to_string(code)).c_str());
        }
        return 1;
    }
    if (event == "throw") {
        read_all(ops, job);
        throw std::runtime_error("asked to throw");
    }
    if (event == "args") {
        read_all(ops, job);
        return reply(ops, job, app->args);
    }
    if (event == "count") {
        read_all(ops, job);
        return reply(ops, job, std::to_string(app->jobs));
    }
    read_all(ops, job);
    ops->error(job, 404, ("no handler for event \"" + event + "\"").c_str());
    return 1;
}

}  // namespace

extern "C" {

unsigned int cocaine_abi_version(void) { return COCAINE_ABI_VERSION; }

int cocaine_create(const char *args, cocaine_app **app, char *error, size_t error_size) {
    try {
        cocaine_app *made = new cocaine_app();
        made->args = args ? args : "";
        *app = made;
        return 0;
    } catch (const std::exception &e) {
        std::snprintf(error, error_size, "%s", e.what());
        return 1;
    }
}

int cocaine_handle(cocaine_app *app, const char *event, const cocaine_job_ops *ops,
                   cocaine_job *job) {
    try {
        return handle(app, event, ops, job);
    } catch (const std::exception &e) {
        ops->error(job, 500, e.what());
        return 1;
    } catch (...) {
        ops->error(job, 500, "unknown C++ exception");
        return 1;
    }
}

void cocaine_destroy(cocaine_app *app) { delete app; }

}  // extern "C"
