// Text in, text out, in C++ with no graph runtime: the encoder, cross-attention cache and
// decoding step of an encoder-decoder artifact (T5) compiled ahead of time by XLA, one
// bucket each; greedy_decoding.h decodes; usage and checks in generate_main.h.
//
// The buckets are used through their C ABI (export/formats/xla_aot/abi.cc), loaded with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND): what they link (libtensorflow_framework.so.2, for
// Abseil) and the program's own libraries each keep their protobuf. Linked into one
// scope, sentencepiece's protobuf calls went to TensorFlow's copy (a crash), and with
// RTLD_LOCAL alone TensorFlow's went to sentencepiece's. Which bucket and its sizes come from `python -m export.formats.xla_aot
// cflags --role ... --as ...` (see Makefile): ENCODER_*, CROSS_* and STEP_* LIBRARY,
// BATCH, LENGTH (encoder length) and CACHE (self cache length). Every bucket maps
// ARTIFACT_DIR/xla_aot/weights.bin (the kernel shares the pages). Calls smaller than
// the buckets are padded with zeros (pad token, mask off, empty cache positions) and cut
// back, as the Python runtime does; the encoder's and cross cache's outputs stay at
// bucket size, since only the next graph reads them.
#include <dlfcn.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "generate_main.h"

namespace {

// Copies the leading corner two row-major arrays share, zero-filling the rest of `to`.
template <typename T>
std::vector<T> corner(const std::vector<T>& from, const std::vector<int64_t>& from_shape,
                      const std::vector<int64_t>& to_shape) {
  std::vector<T> to(element_count(to_shape), T(0));
  const size_t rank = to_shape.size();
  std::vector<int64_t> index(rank, 0), shared(rank);
  for (size_t d = 0; d < rank; ++d) shared[d] = std::min(from_shape[d], to_shape[d]);
  if (rank == 0 || element_count(shared) == 0) return to;
  while (true) {  // one innermost run per iteration
    int64_t source = 0, target = 0;
    for (size_t d = 0; d < rank; ++d) source = source * from_shape[d] + index[d], target = target * to_shape[d] + index[d];
    std::memcpy(to.data() + target, from.data() + source, sizeof(T) * shared[rank - 1]);
    size_t d = rank - 1;
    while (d-- > 0 && ++index[d] == shared[d]) index[d] = 0;
    if (d == static_cast<size_t>(-1)) return to;
  }
}

// One bucket's shared library through its C ABI: arguments and results by name.
class Bucket {
 public:
  Bucket(const std::string& dir, const std::string& library) {
    lib_ = dlopen((dir + "/" + library).c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lib_) throw std::runtime_error(std::string("cannot load ") + library + ": " + dlerror());
    bind(create_, "xla_aot_create"), bind(destroy_, "xla_aot_destroy"), bind(weights_, "xla_aot_bind_weights");
    bind(threads_, "xla_aot_set_threads"), bind(args_, "xla_aot_num_args"), bind(results_, "xla_aot_num_results");
    bind(arg_name_, "xla_aot_arg_name"), bind(result_name_, "xla_aot_result_name"), bind(bound_, "xla_aot_arg_bound");
    bind(result_bytes_, "xla_aot_result_bytes"), bind(run_, "xla_aot_run"), bind(error_, "xla_aot_error");
    handle_ = create_();
    if (!handle_) throw std::runtime_error(library + ": out of memory");
    if (weights_(handle_, (dir + "/xla_aot").c_str()) != 0) throw std::runtime_error(library + ": " + error_(handle_));
    threads_(handle_, 1);
    inputs_.resize(args_(handle_));
  }

  ~Bucket() {
    if (handle_) destroy_(handle_);
    if (lib_) dlclose(lib_);
  }

  // Sets input `name` (the caller keeps `data` alive until run()).
  void input(const std::string& name, const void* data) {
    for (size_t i = 0; i < inputs_.size(); ++i)
      if (name == arg_name_(handle_, static_cast<int>(i))) {
        inputs_[i] = data;
        return;
      }
    throw std::runtime_error("the compiled bucket takes no input " + name);
  }

  // Runs; returns every result by name.
  std::vector<std::pair<std::string, std::vector<float>>> run() {
    std::vector<std::pair<std::string, std::vector<float>>> outputs;
    std::vector<void*> pointers;
    for (int i = 0; i < results_(handle_); ++i) {
      outputs.emplace_back(result_name_(handle_, i), std::vector<float>(result_bytes_(handle_, i) / sizeof(float)));
    }
    for (auto& output : outputs) pointers.push_back(output.second.data());
    for (size_t i = 0; i < inputs_.size(); ++i)
      if (!bound_(handle_, static_cast<int>(i)) && inputs_[i] == nullptr)
        throw std::runtime_error(std::string("no data for input ") + arg_name_(handle_, static_cast<int>(i)));
    if (run_(handle_, inputs_.data(), pointers.data()) != 0) throw std::runtime_error(error_(handle_));
    return outputs;
  }

  static std::vector<float> take(std::vector<std::pair<std::string, std::vector<float>>>& outputs,
                                 const std::string& name) {
    for (auto& output : outputs)
      if (output.first == name) return std::move(output.second);
    throw std::runtime_error("the compiled bucket has no result " + name);
  }

 private:
  template <typename F>
  void bind(F& function, const char* symbol) {
    function = reinterpret_cast<F>(dlsym(lib_, symbol));
    if (!function) throw std::runtime_error(std::string("the bucket library lacks ") + symbol);
  }

  void* lib_ = nullptr;
  void* handle_ = nullptr;
  std::vector<const void*> inputs_;
  void* (*create_)() = nullptr;
  void (*destroy_)(void*) = nullptr;
  int (*weights_)(void*, const char*) = nullptr;
  int (*threads_)(void*, int) = nullptr;
  int (*args_)(void*) = nullptr;
  int (*results_)(void*) = nullptr;
  const char* (*arg_name_)(void*, int) = nullptr;
  const char* (*result_name_)(void*, int) = nullptr;
  int (*bound_)(void*, int) = nullptr;
  long (*result_bytes_)(void*, int) = nullptr;
  int (*run_)(void*, const void* const*, void* const*) = nullptr;
  const char* (*error_)(void*) = nullptr;
};

class AotEngine : public DecodingEngine {
 public:
  AotEngine(const std::string& dir, const Reference& ref)
      : ref_(ref), encoder_(dir, ENCODER_LIBRARY), cross_(dir, CROSS_LIBRARY), step_(dir, STEP_LIBRARY) {
    // Each graph reads the previous one's bucket-sized output as it is.
    if (ENCODER_BATCH != CROSS_BATCH || CROSS_BATCH != STEP_BATCH || ENCODER_LENGTH != CROSS_LENGTH ||
        CROSS_LENGTH != STEP_LENGTH)
      throw std::runtime_error("the encoder, cross cache and decoding step buckets differ in batch or length");
  }

  FloatBuffer encode(const IntBuffer& token_ids, const IntBuffer& mask) override {
    fit(token_ids.shape, "encoder");
    const std::vector<int64_t> bucket{ENCODER_BATCH, ENCODER_LENGTH};
    const auto ids = corner(token_ids.data, token_ids.shape, bucket), padding = corner(mask.data, mask.shape, bucket);
    encoder_.input(ref_.part("encoder_ids"), ids.data());
    encoder_.input(ref_.part("encoder_mask"), padding.data());
    auto outputs = encoder_.run();
    return opaque(Bucket::take(outputs, ref_.part("encoder_hidden")));
  }

  FloatBuffer cross_cache(const FloatBuffer& hidden) override {
    cross_.input(ref_.part("cross_hidden"), hidden.data.data());
    auto outputs = cross_.run();
    return opaque(Bucket::take(outputs, ref_.part("cross_kv")));
  }

  FloatBuffer step(const IntBuffer& mask, const IntBuffer& tokens, FloatBuffer& cache, int32_t index,
                   const FloatBuffer& cross) override {
    const int64_t batch = tokens.shape[0];
    fit(mask.shape, "decoding step");
    const CacheLayout layout{ref_.cache_shape, ref_.cache_axis};
    const size_t axis = std::find(layout.dims.begin(), layout.dims.end(), layout.axis) - layout.dims.begin();
    if (axis >= cache.shape.size() || cache.shape[axis] > STEP_CACHE)
      throw std::runtime_error("the self cache is longer than the decoding step's bucket (" +
                               std::to_string(STEP_CACHE) + "): lower MAX_NEW_TOKENS");
    const std::vector<int64_t> bucket_cache = layout.shape(STEP_BATCH, STEP_CACHE);
    const auto padding = corner(mask.data, mask.shape, {STEP_BATCH, STEP_LENGTH});
    const auto ids = corner(tokens.data, tokens.shape, {STEP_BATCH, tokens.shape[1]});
    const auto self_cache = corner(cache.data, cache.shape, bucket_cache);
    step_.input(ref_.part("step_mask"), padding.data());
    step_.input(ref_.part("step_ids"), ids.data());
    step_.input(ref_.part("step_cache"), self_cache.data());
    step_.input(ref_.part("step_index"), &index);
    step_.input(ref_.part("step_cross_kv"), cross.data.data());
    auto outputs = step_.run();
    cache.data = corner(Bucket::take(outputs, ref_.part("next_cache")), bucket_cache, cache.shape);
    std::vector<float> logits = Bucket::take(outputs, ref_.part("logits"));
    const int64_t vocabulary = static_cast<int64_t>(logits.size()) / STEP_BATCH;
    return {{batch, vocabulary}, corner(logits, {STEP_BATCH, vocabulary}, {batch, vocabulary})};
  }

 private:
  static void fit(const std::vector<int64_t>& shape, const char* graph) {
    if (shape.at(0) > ENCODER_BATCH || shape.at(1) > ENCODER_LENGTH)
      throw std::runtime_error(std::string("the input exceeds the ") + graph + " bucket (" +
                               std::to_string(ENCODER_BATCH) + "x" + std::to_string(ENCODER_LENGTH) + ")");
  }

  // A bucket-sized output only the next graph reads: its shape does not matter here.
  static FloatBuffer opaque(std::vector<float> data) {
    const int64_t count = static_cast<int64_t>(data.size());
    return {{count}, std::move(data)};
  }

  const Reference& ref_;
  Bucket encoder_, cross_, step_;
};

}  // namespace

int main(int argc, char** argv) {
  return generate_main(argc, argv, [](const std::string& dir, const Reference& ref) {
    return std::make_unique<AotEngine>(dir, ref);
  });
}
