// A small C ABI over one XLA AOT-compiled function, so C programs and Python's
// ctypes can use it without C++ name mangling.
//
// Compiled once per bucket with -DXLA_AOT_HEADER='"<bucket>.h"' and
// -DXLA_AOT_CLASS=<class>: the generated header declares a class deriving from
// tensorflow::XlaCompiledCpuFunction.
//
// Arguments and results are addressed by position; xla_aot_arg_name and
// xla_aot_result_name give their names ("token_ids", "sequence_output"), and
// xla_aot_arg_bytes / xla_aot_result_bytes their sizes. xla_aot_run copies the
// caller's buffers in and the results out, so callers need no special alignment.
#define EIGEN_USE_THREADS
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "unsupported/Eigen/CXX11/Tensor"
#include XLA_AOT_HEADER

namespace {

struct Handle {
  XLA_AOT_CLASS function;
  std::string error;
  std::unique_ptr<Eigen::ThreadPool> pool;
  std::unique_ptr<Eigen::ThreadPoolDevice> device;
};

const char* strip(const char* name, const char* prefix) {
  size_t n = std::strlen(prefix);
  return std::strncmp(name, prefix, n) == 0 ? name + n : name;
}

}  // namespace

extern "C" {

// A handle owning the function's buffers, or NULL when out of memory.
void* xla_aot_create(void) { return new (std::nothrow) Handle(); }

void xla_aot_destroy(void* handle) { delete static_cast<Handle*>(handle); }

// Runs the function's matrix products on `threads` threads (1: the caller's only).
int xla_aot_set_threads(void* handle, int threads) {
  auto* h = static_cast<Handle*>(handle);
  if (threads < 1) return 1;
  h->function.set_thread_pool(nullptr);
  h->device.reset();
  h->pool.reset();
  if (threads > 1) {
    h->pool = std::make_unique<Eigen::ThreadPool>(threads);
    h->device = std::make_unique<Eigen::ThreadPoolDevice>(h->pool.get(), threads);
    h->function.set_thread_pool(h->device.get());
  }
  return 0;
}

int xla_aot_num_args(void* handle) { return static_cast<Handle*>(handle)->function.num_args(); }

int xla_aot_num_results(void* handle) { return static_cast<Handle*>(handle)->function.num_results(); }

const char* xla_aot_arg_name(void* handle, int index) {
  auto& f = static_cast<Handle*>(handle)->function;
  if (index < 0 || index >= f.num_args()) return nullptr;
  return strip(f.GetArgName(index), "feed_");
}

const char* xla_aot_result_name(void* handle, int index) {
  auto& f = static_cast<Handle*>(handle)->function;
  if (index < 0 || index >= f.num_results()) return nullptr;
  return strip(f.GetResultName(index), "fetch_");
}

long xla_aot_arg_bytes(void* handle, int index) {
  auto& f = static_cast<Handle*>(handle)->function;
  return index < 0 || index >= f.num_args() ? -1 : f.arg_size(index);
}

long xla_aot_result_bytes(void* handle, int index) {
  auto& f = static_cast<Handle*>(handle)->function;
  return index < 0 || index >= f.num_results() ? -1 : f.result_size(index);
}

// Runs on args[i] (xla_aot_arg_bytes(i) bytes each), writing results[i].
// Returns 0 on success; otherwise xla_aot_error tells why.
int xla_aot_run(void* handle, const void* const* args, void* const* results) {
  auto* h = static_cast<Handle*>(handle);
  auto& f = h->function;
  for (int i = 0; i < f.num_args(); ++i) std::memcpy(f.arg_data(i), args[i], f.arg_size(i));
  if (!f.Run()) {
    h->error = f.error_msg();
    return 1;
  }
  for (int i = 0; i < f.num_results(); ++i) std::memcpy(results[i], f.result_data(i), f.result_size(i));
  h->error.clear();
  return 0;
}

// The last run's error message ("" after a successful run).
const char* xla_aot_error(void* handle) { return static_cast<Handle*>(handle)->error.c_str(); }

}  // extern "C"
