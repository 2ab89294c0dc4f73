// The SIMD dot-product kernels of the cut pool (GCC/Clang vector extensions): aᵀx for one dense
// row, and a register-blocked 4 × 4 kernel that dots four stored rows with a group of panel
// columns for the Gram fold. Header-only templates over float32 and float64 rows, so each use
// is compiled inline with the caller's target flags.
#pragma once
#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>

#include <Eigen/Dense>

namespace advcorrect::cuts {

// SIMD lanes of float64 for the fold kernel (GCC/Clang vector extensions), as wide as the
// target's registers so the vectors stay in registers (and out of the ABI).
#if defined(__AVX512F__)
inline constexpr int kLanes = 8;
#elif defined(__AVX__)
inline constexpr int kLanes = 4;
#else
inline constexpr int kLanes = 2;
#endif
typedef double DoubleLanes __attribute__((vector_size(kLanes * sizeof(double))));
typedef float FloatLanes __attribute__((vector_size(kLanes * sizeof(float))));

template <typename T>
inline DoubleLanes LoadLanes(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    FloatLanes v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, DoubleLanes);
  } else {
    DoubleLanes v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
}

inline double SumLanes(const DoubleLanes& v) {
  double sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += v[l];
  return sum;
}

// aᵀx for a dense row a (float32 or float64) and float64 x, with four vector accumulators so
// the FMA latency is hidden (Eigen's dot of a cast float vector does not vectorise).
template <typename T>
double DenseDot(const T* a, const double* x, Eigen::Index len) {
  constexpr Eigen::Index kStep = 4 * kLanes;
  const Eigen::Index blocked = len - len % kStep;
  DoubleLanes acc[4] = {};
  for (Eigen::Index q = 0; q < blocked; q += kStep) {
    for (int u = 0; u < 4; ++u) acc[u] += LoadLanes(a + q + u * kLanes) * LoadLanes(x + q + u * kLanes);
  }
  double sum = SumLanes((acc[0] + acc[1]) + (acc[2] + acc[3]));
  for (Eigen::Index q = blocked; q < len; ++q) sum += static_cast<double>(a[q]) * x[q];
  return sum;
}

// Adds to out[r·k + t] (r < 4, t < k) the dot products of rows x[r] and panel columns
// panel[t], both over [j0, j0 + len). A 4 × 4 block of vector accumulators: each loaded vector
// of a row or a column feeds four FMAs, and all sixteen sums stay in registers.
template <typename T, typename P>
void QuadDots(const std::array<const T*, 4>& x, const P* const* panel, Eigen::Index j0, Eigen::Index k,
              Eigen::Index len, double* out) {
  const Eigen::Index vector_len = len - len % kLanes;
  for (Eigen::Index t0 = 0; t0 < k; t0 += 4) {
    // A short last group repeats its final column; the repeats are not stored.
    std::array<const P*, 4> p;
    for (Eigen::Index c = 0; c < 4; ++c) p[static_cast<size_t>(c)] = panel[std::min(t0 + c, k - 1)] + j0;
    DoubleLanes acc[4][4] = {};
    for (Eigen::Index q = 0; q < vector_len; q += kLanes) {
      const DoubleLanes u[4] = {LoadLanes(x[0] + q), LoadLanes(x[1] + q), LoadLanes(x[2] + q), LoadLanes(x[3] + q)};
      for (int c = 0; c < 4; ++c) {
        const DoubleLanes v = LoadLanes(p[static_cast<size_t>(c)] + q);
        for (int r = 0; r < 4; ++r) acc[r][c] += u[r] * v;
      }
    }
    for (int r = 0; r < 4; ++r) {
      for (Eigen::Index t = t0; t < std::min(t0 + 4, k); ++t) {
        const size_t c = static_cast<size_t>(t - t0);
        double sum = SumLanes(acc[r][c]);
        for (Eigen::Index q = vector_len; q < len; ++q) {
          sum += static_cast<double>(x[static_cast<size_t>(r)][q]) * static_cast<double>(p[c][q]);
        }
        out[r * k + t] += sum;
      }
    }
  }
}

}  // namespace advcorrect::cuts
