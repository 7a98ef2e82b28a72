// Greedy decoding over an encoder, a cross-attention cache graph and a cached decoding
// step, with the Python runtime's semantics (runtime/generation.py, CachedDecoder and
// greedy; the cache layout is in graphs/README.md, "Generation"):
//
//   encode the prompt once, compute every decoder layer's cross keys/values once, then
//   per new token i = 0, 1, ...: feed each row's current token (the decoder start id
//   first), the encoder padding mask, the self cache, cache index i and the cross cache;
//   take the argmax of the logits (the first maximum on ties); a row that has produced
//   the end id gets the pad id from then on; stop when every row has ended or after
//   max_new_tokens tokens.
//
// The self cache is allocated once, zero-filled, with its cache axis max_new_tokens long,
// and replaced by the step's next cache after every step.
//
// Nothing here knows a model: what runs the graphs is a DecodingEngine (OpenVINO in
// t5_generate_openvino.cc; compiled XLA AOT buckets can implement the same interface),
// and the cache's shape comes from the artifact's reference file.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

// A row-major array and its shape.
template <typename T>
struct Buffer {
  std::vector<int64_t> shape;
  std::vector<T> data;
};
using FloatBuffer = Buffer<float>;
using IntBuffer = Buffer<int32_t>;

// Runs the three graphs of cached decoding on caller buffers.
class DecodingEngine {
 public:
  virtual ~DecodingEngine() = default;
  // Token ids and padding mask [batch, length] -> the encoder's hidden states.
  virtual FloatBuffer encode(const IntBuffer& token_ids, const IntBuffer& mask) = 0;
  // Hidden states -> every decoder layer's cross-attention keys and values.
  virtual FloatBuffer cross_cache(const FloatBuffer& hidden) = 0;
  // One token per row: `tokens` [batch, 1], the encoder padding `mask`, the self `cache`,
  // the cache `index` to write, the `cross` cache -> logits [batch, vocabulary]. Replaces
  // `cache` by the step's next self cache (same shape).
  virtual FloatBuffer step(const IntBuffer& mask, const IntBuffer& tokens, FloatBuffer& cache, int32_t index,
                           const FloatBuffer& cross) = 0;
};

struct DecoderIds {
  int32_t start, end, pad;
};

// The self cache's axes as the artifact gives them: "batch", the cache axis by name, and
// static sizes.
struct CacheLayout {
  std::vector<std::string> dims;
  std::string axis;

  std::vector<int64_t> shape(int64_t batch, int64_t length) const {
    std::vector<int64_t> out;
    for (const std::string& dim : dims) {
      if (dim == "batch") {
        out.push_back(batch);
      } else if (dim == axis) {
        out.push_back(length);
      } else if (!dim.empty() && dim.find_first_not_of("0123456789") == std::string::npos) {
        out.push_back(std::stoll(dim));
      } else {
        throw std::runtime_error("the self cache has an axis '" + dim + "' that cannot be sized");
      }
    }
    return out;
  }
};

inline int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Greedy tokens per row (the decoder start id not included), each row as long as the
// longest: up to and including the step at which the last row produced the end id, else
// max_new_tokens; a row that ended earlier is padded with the pad id.
inline std::vector<std::vector<int32_t>> greedy(DecodingEngine& engine, const IntBuffer& token_ids,
                                                const IntBuffer& mask, const CacheLayout& layout,
                                                int max_new_tokens, DecoderIds ids) {
  const int64_t batch = token_ids.shape.at(0);
  const FloatBuffer hidden = engine.encode(token_ids, mask);
  const FloatBuffer cross = engine.cross_cache(hidden);
  FloatBuffer cache;
  cache.shape = layout.shape(batch, max_new_tokens);
  cache.data.assign(element_count(cache.shape), 0.0f);

  std::vector<std::vector<int32_t>> tokens(batch);
  std::vector<bool> finished(batch, false);
  IntBuffer current{{batch, 1}, std::vector<int32_t>(batch, ids.start)};
  for (int index = 0; index < max_new_tokens; ++index) {
    const FloatBuffer logits = engine.step(mask, current, cache, index, cross);
    if (logits.shape.size() != 2 || logits.shape[0] != batch)
      throw std::runtime_error("the decoding step's logits are not [batch, vocabulary]");
    const int64_t vocabulary = logits.shape[1];
    bool all_finished = true;
    for (int64_t row = 0; row < batch; ++row) {
      const float* first = logits.data.data() + row * vocabulary;
      const int32_t best = static_cast<int32_t>(std::max_element(first, first + vocabulary) - first);
      current.data[row] = finished[row] ? ids.pad : best;
      tokens[row].push_back(current.data[row]);
      finished[row] = finished[row] || current.data[row] == ids.end;
      all_finished = all_finished && finished[row];
    }
    if (all_finished) break;
  }
  return tokens;
}
