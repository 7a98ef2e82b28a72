// The weights of an XLA AOT artifact, memory-mapped once and bound to compiled buckets.
//
// Every bucket of an artifact is compiled with the model's weights as arguments
// (not constants), so all buckets read one file: xla_aot/weights.bin, described
// by xla_aot/weights.txt:
//
//   keras-aot-export weights 1
//   <argument name> <byte offset> <byte count>      one line per weight
//
// Offsets are multiples of 64, as XLA's generated code requires of its argument
// buffers. The file is mapped read-only (the generated code never writes its
// arguments), so every process and bucket using it shares the same pages.
//
//   xla_aot::MappedWeights weights("ARTIFACT/xla_aot");
//   if (!weights.ok() || !weights.Bind(function)) { ... weights.error() ... }
//
// Header-only; needs TensorFlow's xla_compiled_cpu_function.h (the generated
// header includes it) and POSIX mmap.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>

#include "tensorflow/compiler/tf2xla/xla_compiled_cpu_function.h"

namespace xla_aot {

class MappedWeights {
 public:
  explicit MappedWeights(const std::string& directory) {
    if (!ReadIndex(directory + "/weights.txt")) return;
    const std::string path = directory + "/weights.bin";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error_ = "cannot open " + path;
      return;
    }
    struct stat info;
    if (::fstat(fd, &info) != 0 || info.st_size < static_cast<off_t>(end_)) {
      error_ = path + " is shorter than weights.txt says (" + std::to_string(end_) + " bytes)";
      ::close(fd);
      return;
    }
    size_ = static_cast<size_t>(info.st_size);
    void* data = size_ ? ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
    ::close(fd);
    if (data == MAP_FAILED) {
      error_ = "cannot map " + path;
      return;
    }
    data_ = static_cast<const char*>(data);
  }

  ~MappedWeights() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }

  MappedWeights(const MappedWeights&) = delete;
  MappedWeights& operator=(const MappedWeights&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Points each argument of `function` named in the index at its weight. Returns the
  // number bound, or -1 (error() says why) when a weight's size differs from the argument's.
  int Bind(tensorflow::XlaCompiledCpuFunction& function) {
    int bound = 0;
    for (int i = 0; i < function.num_args(); ++i) {
      auto found = index_.find(function.GetArgName(i));
      if (found == index_.end()) continue;
      if (static_cast<uint64_t>(function.arg_size(i)) != found->second.second) {
        error_ = std::string("weight ") + function.GetArgName(i) + " is " + std::to_string(found->second.second) +
                 " bytes in weights.bin; the compiled function takes " + std::to_string(function.arg_size(i));
        return -1;
      }
      function.set_arg_data(i, data_ + found->second.first);
      ++bound;
    }
    return bound;
  }

 private:
  bool ReadIndex(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line) || line != "keras-aot-export weights 1") {
      error_ = path + " is missing or not a weights index";
      return false;
    }
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string name;
      uint64_t offset = 0, bytes = 0;
      if (!(fields >> name >> offset >> bytes) || offset % 64 != 0) {
        error_ = path + ": bad line '" + line + "'";
        return false;
      }
      index_[name] = {offset, bytes};
      end_ = std::max(end_, offset + bytes);
    }
    return true;
  }

  std::unordered_map<std::string, std::pair<uint64_t, uint64_t>> index_;
  uint64_t end_ = 0;
  const char* data_ = nullptr;
  size_t size_ = 0;
  std::string error_;
};

}  // namespace xla_aot
