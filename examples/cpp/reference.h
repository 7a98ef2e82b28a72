// Reads the plain-text reference files an export writes (reference/<graph>.txt,
// reference/text.txt, reference/generation.txt; layout in export/references.py) and
// compares outputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

struct Array {
  std::string dtype;             // "int32" or "float32"
  std::vector<int64_t> shape;
  std::vector<int32_t> ints;     // int32 values
  std::vector<float> floats;     // float32 values
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct Reference {
  std::string text;                     // the sample text (text.txt, generation.txt)
  int start_id = -1, end_id = -1;       // framing around the pieces (text.txt, generation.txt)
  std::string graph, ids_input, mask_input;  // the graph and its two inputs (text.txt only)
  double max_abs = -1, min_cosine = -1; // the artifact dtype's bounds (-1: not set)
  std::map<std::string, Array> inputs, outputs;
  // generation.txt only: decoder start, end and pad ids, tokens to generate, the graph or
  // tensor name of each part of cached decoding (runtime.roles.DecodingGraphs's fields),
  // the self cache's axes (`batch`, the cache axis by name, static sizes), the cache axis
  // and its length in the reference run.
  int decoder_start_id = -1, decoder_end_id = -1, decoder_pad_id = -1, max_new_tokens = 0;
  std::map<std::string, std::string> parts;
  std::vector<std::string> cache_shape;
  std::string cache_axis;
  int64_t cache_length = 0;

  const std::string& part(const std::string& key) const {
    auto found = parts.find(key);
    if (found == parts.end()) throw std::runtime_error("the reference names no part " + key);
    return found->second;
  }
};

inline Reference read_reference(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open reference file " + path);
  Reference ref;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (kind == "text") {
      ref.text = line.size() > 5 ? line.substr(5) : "";
    } else if (kind == "graph") {
      words >> ref.graph >> ref.ids_input >> ref.mask_input;
    } else if (kind == "framing") {
      words >> ref.start_id >> ref.end_id;
    } else if (kind == "decoding") {
      words >> ref.decoder_start_id >> ref.decoder_end_id >> ref.decoder_pad_id >> ref.max_new_tokens;
    } else if (kind == "part") {
      std::string key, name;
      words >> key >> name;
      ref.parts[key] = name;
    } else if (kind == "cache_shape") {
      for (std::string dim; words >> dim;) ref.cache_shape.push_back(dim);
    } else if (kind == "cache_axis") {
      words >> ref.cache_axis >> ref.cache_length;
    } else if (kind == "tolerance") {
      std::string what;
      double value;
      words >> what >> value;
      (what == "max_abs" ? ref.max_abs : ref.min_cosine) = value;
    } else if (kind == "input" || kind == "output") {
      std::string name;
      Array array;
      words >> name >> array.dtype;
      for (int64_t d; words >> d;) array.shape.push_back(d);
      std::string values;
      if (!std::getline(in, values)) throw std::runtime_error(path + ": no values for " + name);
      std::istringstream numbers(values);
      for (int64_t i = 0; i < array.size(); ++i) {
        if (array.dtype == "int32") {
          int32_t v;
          if (!(numbers >> v)) throw std::runtime_error(path + ": too few values for " + name);
          array.ints.push_back(v);
        } else {
          float v;
          if (!(numbers >> v)) throw std::runtime_error(path + ": too few values for " + name);
          array.floats.push_back(v);
        }
      }
      (kind == "input" ? ref.inputs : ref.outputs)[name] = array;
    }
  }
  return ref;
}

// Prints "<label>, first values: a b c d".
inline void print_first_values(const std::string& label, const std::vector<float>& values) {
  std::printf("%s, first values:", label.c_str());
  for (size_t k = 0; k < values.size() && k < 4; ++k) std::printf(" %.6f", values[k]);
  std::printf("\n");
}

// Compares `got` (same layout as the reference output) with the reference's bounds:
// max abs difference for float32 artifacts, else the smallest cosine similarity of
// vectors along the last axis. Prints one line; returns true when within bounds.
inline bool within_bounds(const Reference& ref, const std::string& name, const std::vector<float>& got) {
  const Array& want = ref.outputs.at(name);
  if (got.size() != want.floats.size()) {
    std::printf("%s: %zu values, the reference has %zu\n", name.c_str(), got.size(), want.floats.size());
    return false;
  }
  double max_abs = 0, min_cos = 1;
  const size_t width = want.shape.back();
  for (size_t row = 0; row < got.size() / width; ++row) {
    double dot = 0, a2 = 0, b2 = 0;
    for (size_t k = row * width; k < (row + 1) * width; ++k) {
      double a = got[k], b = want.floats[k];
      if (!std::isfinite(a)) max_abs = INFINITY;
      max_abs = std::fmax(max_abs, std::fabs(a - b));
      dot += a * b, a2 += a * a, b2 += b * b;
    }
    if (a2 > 0 && b2 > 0) min_cos = std::fmin(min_cos, dot / std::sqrt(a2 * b2));
  }
  bool ok = (ref.max_abs < 0 || max_abs <= ref.max_abs) && (ref.min_cosine < 0 || min_cos >= ref.min_cosine);
  std::printf("%s: max abs diff %.3g", name.c_str(), max_abs);
  if (ref.max_abs >= 0) std::printf(" (bound %.3g)", ref.max_abs);
  std::printf(", min cosine %.7f", min_cos);
  if (ref.min_cosine >= 0) std::printf(" (bound %.4g)", ref.min_cosine);
  std::printf(": %s\n", ok ? "OK" : "MISMATCH");
  return ok;
}
