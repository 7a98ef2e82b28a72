// Embeds one XLA AOT bucket of an exported graph, linked statically: no Python,
// no TensorFlow runtime (only libtensorflow_framework.so.2 for Abseil symbols).
//
//   aot_encoder ARTIFACT REFERENCE.txt    run the reference inputs, compare with Keras's
//                                         outputs; exit 1 when outside the artifact's bounds
//   aot_encoder ARTIFACT --ids 1 45 67 2  print the outputs for these token ids (mask all ones)
//
// Built against one bucket: XLA_AOT_HEADER, XLA_AOT_CLASS, XLA_AOT_BATCH and
// XLA_AOT_LENGTH come from `python -m export.formats.xla_aot cflags` (see Makefile). The
// weights are not in the code: ARTIFACT/xla_aot/weights.bin is mapped and bound
// (xla_aot_weights.h, shipped in the artifact). Inputs shorter than the bucket are
// padded with 0 (pad token, mask off) and the outputs cut back, as the Python runtime does.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <vector>

#include "reference.h"
#include XLA_AOT_HEADER
#include "xla_aot_weights.h"

#define BUCKET_BATCH XLA_AOT_BATCH
#define BUCKET_SEQUENCE XLA_AOT_LENGTH

namespace {

const char* strip(const char* name, const char* prefix) {
  return std::strncmp(name, prefix, std::strlen(prefix)) == 0 ? name + std::strlen(prefix) : name;
}

// Copies a [batch, length] int32 array into the bucket's [BUCKET_BATCH, BUCKET_SEQUENCE] buffer.
void pad_into(const Array& array, int32_t* buffer) {
  std::memset(buffer, 0, sizeof(int32_t) * BUCKET_BATCH * BUCKET_SEQUENCE);
  for (int64_t b = 0; b < array.shape[0]; ++b)
    std::memcpy(buffer + b * BUCKET_SEQUENCE, &array.ints[b * array.shape[1]], sizeof(int32_t) * array.shape[1]);
}

// The [batch, length, rest...] corner of a bucket output [BUCKET_BATCH, BUCKET_SEQUENCE, rest...],
// or [batch, rest...] of [BUCKET_BATCH, rest...] for outputs without a sequence axis.
std::vector<float> unpad(const float* data, bool has_sequence, int64_t batch, int64_t length, int64_t rest) {
  int64_t row = has_sequence ? BUCKET_SEQUENCE * rest : rest, keep = has_sequence ? length * rest : rest;
  std::vector<float> out;
  for (int64_t b = 0; b < batch; ++b) out.insert(out.end(), data + b * row, data + b * row + keep);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " ARTIFACT REFERENCE.txt | ARTIFACT --ids ID...\n";
    return 2;
  }
  Reference ref;
  try {
    if (std::string(argv[2]) == "--ids") {
      Array ids{"int32", {1, argc - 3}}, mask{"int32", {1, argc - 3}};
      for (int i = 3; i < argc; ++i) ids.ints.push_back(std::atoi(argv[i])), mask.ints.push_back(1);
      ref.inputs = {{"token_ids", ids}, {"padding_mask", mask}};
    } else {
      ref = read_reference(argv[2]);
    }
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  }
  const Array& first = ref.inputs.begin()->second;
  const int64_t batch = first.shape[0], length = first.shape[1];
  if (batch > BUCKET_BATCH || length > BUCKET_SEQUENCE) {
    std::cerr << "error: " << batch << "x" << length << " exceeds this bucket (" << BUCKET_BATCH << "x"
              << BUCKET_SEQUENCE << ")\n";
    return 2;
  }

  // Owns its result and scratch buffers; arguments point at the mapped weights and at `inputs`.
  XLA_AOT_CLASS function(XLA_AOT_CLASS::AllocMode::RESULTS_PROFILES_AND_TEMPS_ONLY);
  xla_aot::MappedWeights weights(std::string(argv[1]) + "/xla_aot");
  if (!weights.ok() || weights.Bind(function) < 0) {
    std::cerr << "error: " << weights.error() << "\n";
    return 2;
  }
  std::vector<std::unique_ptr<int32_t, decltype(&std::free)>> inputs;
  for (int i = 0; i < function.num_args(); ++i) {
    if (function.arg_data(i) != nullptr) continue;  // a weight
    std::string name = strip(function.GetArgName(i), "feed_");
    auto found = ref.inputs.find(name);
    if (found == ref.inputs.end()) {
      std::cerr << "error: no input named " << name << "\n";
      return 2;
    }
    inputs.emplace_back(static_cast<int32_t*>(std::aligned_alloc(64, (function.arg_size(i) + 63) / 64 * 64)), &std::free);
    pad_into(found->second, inputs.back().get());
    function.set_arg_data(i, inputs.back().get());
  }
  if (!function.Run()) {
    std::cerr << "error: " << function.error_msg() << "\n";
    return 2;
  }

  bool ok = true;
  for (int i = 0; i < function.num_results(); ++i) {
    std::string name = strip(function.GetResultName(i), "fetch_");
    const float* data = static_cast<const float*>(function.result_data(i));
    const int64_t values = function.result_size(i) / sizeof(float);
    auto want = ref.outputs.find(name);
    // Outputs are [batch, sequence, ...] or [batch, ...]: the reference says which; without
    // one (--ids), every output of these graphs has a sequence axis.
    const bool has_sequence = want == ref.outputs.end() || want->second.shape.size() >= 3;
    const int64_t rest = values / (int64_t(BUCKET_BATCH) * (has_sequence ? BUCKET_SEQUENCE : 1));
    std::vector<float> got = unpad(data, has_sequence, batch, length, rest);
    print_first_values(name, got);
    if (want != ref.outputs.end()) ok = within_bounds(ref, name, got) && ok;
  }
  return ok ? 0 : 1;
}
