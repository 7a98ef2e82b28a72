// float32 matrix products of XLA AOT code, split across the caller and the pool.
//
// XLA's dot thunks call xla::cpu::internal::TypedMatMul<float, float, float>.
// The TensorFlow wheel's runtime sources (dot_lib_f32.cc) implement it as an
// asynchronous Eigen tensor contraction on the thread pool while the calling
// thread sleeps until it is done: on 2 cores, 2 threads were 1.08x faster than
// one (docs/embedding.md). The runtime library is built with this file
// in place of dot_lib_f32.cc, defining the same symbol: the product is cut into
// as many column (or row) blocks as there are pool threads plus the caller, each
// block a single-threaded Eigen product (the same AVX-512 kernel), and the caller
// computes one block itself. Small products run on the caller alone.
//
// Layout: operands are column-major (Eigen's default), out[m x n] =
// op(lhs)[m x k] * op(rhs)[k x n], op transposing when asked.
#define EIGEN_USE_THREADS
#include <algorithm>
#include <cstdint>

#include "Eigen/Core"
#include "absl/functional/any_invocable.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace xla::cpu::internal {

using DoneCallback = absl::AnyInvocable<void()>;

// Declared as in dot_lib.h (not included: its `extern template` declarations would
// forbid the specialization below).
template <typename LhsType, typename RhsType, typename OutType>
void TypedMatMul(const Eigen::ThreadPoolDevice* device, void* out, void* lhs, void* rhs, int64_t m, int64_t n,
                 int64_t k, bool transpose_lhs, bool transpose_rhs, DoneCallback done);

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using Map = Eigen::Map<Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstMap = Eigen::Map<const Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;

// Below this many multiply-adds a hand-off to another thread costs more than it saves.
constexpr int64_t kMinParallelWork = 1 << 19;

struct Product {
  float* out;
  const float* lhs;
  const float* rhs;
  int64_t m, n, k;
  bool transpose_lhs, transpose_rhs;

  // out[rows, cols] for the half-open ranges [r0, r1) x [c0, c1).
  void Block(int64_t r0, int64_t r1, int64_t c0, int64_t c1) const {
    Map result(out + c0 * m + r0, r1 - r0, c1 - c0, Eigen::OuterStride<>(m));
    // op(lhs) rows r0..r1: lhs is m x k (ld m), or k x m (ld k) when transposed.
    ConstMap a = transpose_lhs ? ConstMap(lhs + r0 * k, k, r1 - r0, Eigen::OuterStride<>(k))
                               : ConstMap(lhs + r0, r1 - r0, k, Eigen::OuterStride<>(m));
    // op(rhs) columns c0..c1: rhs is k x n (ld k), or n x k (ld n) when transposed.
    ConstMap b = transpose_rhs ? ConstMap(rhs + c0, c1 - c0, k, Eigen::OuterStride<>(n))
                               : ConstMap(rhs + c0 * k, k, c1 - c0, Eigen::OuterStride<>(k));
    if (transpose_lhs && transpose_rhs) {
      result.noalias() = a.transpose() * b.transpose();
    } else if (transpose_lhs) {
      result.noalias() = a.transpose() * b;
    } else if (transpose_rhs) {
      result.noalias() = a * b.transpose();
    } else {
      result.noalias() = a * b;
    }
  }
};

}  // namespace

template <>
void TypedMatMul<float, float, float>(const Eigen::ThreadPoolDevice* device, void* out, void* lhs, void* rhs,
                                      int64_t m, int64_t n, int64_t k, bool transpose_lhs, bool transpose_rhs,
                                      DoneCallback done) {
  const Product product{static_cast<float*>(out), static_cast<const float*>(lhs), static_cast<const float*>(rhs),
                        m, n, k, transpose_lhs, transpose_rhs};
  const int64_t workers = device == nullptr ? 0 : device->numThreads();
  const int64_t longest = std::max(m, n);
  int64_t parts = std::min<int64_t>(workers + 1, longest / 16);  // blocks of 16 rows or columns at least
  if (parts <= 1 || m * n * k < kMinParallelWork) {
    product.Block(0, m, 0, n);
    done();
    return;
  }
  const bool by_columns = n >= m;
  const int64_t step = (longest + parts - 1) / parts;
  auto block = [&product, by_columns, step, longest, m, n](int64_t part) {
    const int64_t start = part * step, end = std::min(longest, start + step);
    if (start >= end) return;
    if (by_columns) {
      product.Block(0, m, start, end);
    } else {
      product.Block(start, end, 0, n);
    }
  };
  Eigen::Barrier barrier(static_cast<unsigned>(parts - 1));
  for (int64_t part = 1; part < parts; ++part) {
    device->enqueueNoNotification([&block, &barrier, part] {
      block(part);
      barrier.Notify();
    });
  }
  block(0);
  barrier.Wait();
  done();
}

}  // namespace xla::cpu::internal
