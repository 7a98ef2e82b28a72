// A small C ABI over one XLA AOT-compiled function, so C programs and Python's
// ctypes can use it without C++ name mangling.
//
// Compiled once per bucket with -DXLA_AOT_HEADER='"<bucket>.h"' and
// -DXLA_AOT_CLASS=<class>: the generated header declares a class deriving from
// tensorflow::XlaCompiledCpuFunction.
//
// Arguments are the graph's inputs and the model's weights; results its outputs.
// All are addressed by position; xla_aot_arg_name and xla_aot_result_name give
// their names ("token_ids", "sequence_output"), xla_aot_arg_bytes /
// xla_aot_result_bytes their sizes. xla_aot_bind_weights maps the artifact's
// weights file and binds the weight arguments; xla_aot_run copies the caller's
// input buffers in (NULL for a bound argument) and the results out, so callers
// need no special alignment.
#define EIGEN_USE_THREADS
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "unsupported/Eigen/CXX11/Tensor"
#include XLA_AOT_HEADER
#include "xla_aot_weights.h"

namespace {

using AllocMode = tensorflow::XlaCompiledCpuFunction::AllocMode;

struct Handle {
  // Arguments are not allocated: weights point into the mapped file, inputs
  // into `inputs` (allocated on first use, aligned as XLA requires).
  XLA_AOT_CLASS function{AllocMode::RESULTS_PROFILES_AND_TEMPS_ONLY};
  std::vector<void*> inputs = std::vector<void*>(function.num_args(), nullptr);
  std::vector<bool> bound = std::vector<bool>(function.num_args(), false);
  std::unique_ptr<xla_aot::MappedWeights> weights;
  std::string error;
  std::unique_ptr<Eigen::ThreadPool> pool;
  std::unique_ptr<Eigen::ThreadPoolDevice> device;

  ~Handle() {
    for (void* buffer : inputs) std::free(buffer);
  }
};

const char* strip(const char* name, const char* prefix) {
  size_t n = std::strlen(prefix);
  return std::strncmp(name, prefix, n) == 0 ? name + n : name;
}

int fail(Handle* h, std::string message) {
  h->error = std::move(message);
  return 1;
}

}  // namespace

extern "C" {

// A handle owning the function's result and scratch buffers, or NULL when out of memory.
void* xla_aot_create(void) { return new (std::nothrow) Handle(); }

void xla_aot_destroy(void* handle) { delete static_cast<Handle*>(handle); }

// Maps DIRECTORY/weights.bin (indexed by weights.txt) and binds every weight argument.
// Returns 0, or 1 with xla_aot_error saying why.
int xla_aot_bind_weights(void* handle, const char* directory) {
  auto* h = static_cast<Handle*>(handle);
  auto weights = std::make_unique<xla_aot::MappedWeights>(directory);
  if (!weights->ok()) return fail(h, weights->error());
  if (weights->Bind(h->function) < 0) return fail(h, weights->error());
  for (int i = 0; i < h->function.num_args(); ++i)
    h->bound[i] = h->function.arg_data(i) != nullptr && h->inputs[i] == nullptr;
  h->weights = std::move(weights);
  return 0;
}

// Runs the function's matrix products on `threads` threads (1: the caller's only): the
// caller computes one block of each product and a pool of threads - 1 the others
// (export/formats/xla_aot/dot_f32.cc).
int xla_aot_set_threads(void* handle, int threads) {
  auto* h = static_cast<Handle*>(handle);
  if (threads < 1) return 1;
  h->function.set_thread_pool(nullptr);
  h->device.reset();
  h->pool.reset();
  if (threads > 1) {
    h->pool = std::make_unique<Eigen::ThreadPool>(threads - 1);
    h->device = std::make_unique<Eigen::ThreadPoolDevice>(h->pool.get(), threads - 1);
    h->function.set_thread_pool(h->device.get());
  }
  return 0;
}

int xla_aot_num_args(void* handle) { return static_cast<Handle*>(handle)->function.num_args(); }

int xla_aot_num_results(void* handle) { return static_cast<Handle*>(handle)->function.num_results(); }

// 1 when argument `index` is a weight bound by xla_aot_bind_weights.
int xla_aot_arg_bound(void* handle, int index) {
  auto* h = static_cast<Handle*>(handle);
  return index >= 0 && index < h->function.num_args() && h->bound[index];
}

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

// Runs on args[i] (xla_aot_arg_bytes(i) bytes each; NULL for bound weights), writing
// results[i]. Returns 0 on success; otherwise xla_aot_error tells why.
int xla_aot_run(void* handle, const void* const* args, void* const* results) {
  auto* h = static_cast<Handle*>(handle);
  auto& f = h->function;
  for (int i = 0; i < f.num_args(); ++i) {
    if (h->bound[i]) continue;
    if (args[i] == nullptr) return fail(h, std::string("argument ") + f.GetArgName(i) + " was given no data");
    if (h->inputs[i] == nullptr) {
      const size_t size = (f.arg_size(i) + 63) / 64 * 64;
      h->inputs[i] = std::aligned_alloc(64, size ? size : 64);
      if (h->inputs[i] == nullptr) return fail(h, "out of memory for the input buffers");
      f.set_arg_data(i, h->inputs[i]);
    }
    std::memcpy(h->inputs[i], args[i], f.arg_size(i));
  }
  if (!f.Run()) return fail(h, f.error_msg().empty() ? "the compiled function failed" : f.error_msg());
  for (int i = 0; i < f.num_results(); ++i) std::memcpy(results[i], f.result_data(i), f.result_size(i));
  h->error.clear();
  return 0;
}

// The last call's error message ("" after a successful run).
const char* xla_aot_error(void* handle) { return static_cast<Handle*>(handle)->error.c_str(); }

}  // extern "C"
