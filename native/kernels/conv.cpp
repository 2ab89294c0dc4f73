#include "kernels/conv.h"

// Eigen's own multi-threaded GEMM synchronises its threads by spinning, which collapses
// (10-100x slower) when the cores are shared with other processes; these kernels split
// the work over OpenMP threads themselves and run each product single-threaded.
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace advcorrect::kernels {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat>;
using MutMap = Eigen::Map<RowMat>;

// Rows of the im2col matrix handled at once per thread: about 1 MB of floats, so the
// block and the GEMM panels stay in L2.
constexpr long kBlockElements = 1L << 18;

// Below this many flops a call stays on the calling thread: waking a sleeping OpenMP worker
// costs tens of microseconds on an idle machine and milliseconds on a busy one, more than
// the work (the gradient engine calls these per example, on tiny products).
constexpr double kParallelMinFlops = 4e6;

int threadsNow() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

bool isPointwise(const ConvShape& s) {
  return s.fH == 1 && s.fW == 1 && s.sH == 1 && s.sW == 1 && s.padTop == 0 && s.padLeft == 0 &&
         s.outH == s.inH && s.outW == s.inW;
}

// The adjoint of im2col: dx[b0 + img, …] += col[…] (dx of these images must be zeroed first).
void col2imAdd(const float* col, const ConvShape& s, int b0, int b1, float* dx) {
  const long patch = static_cast<long>(s.fH) * s.fW * s.inC;
  long row = 0;
  for (int b = b0; b < b1; ++b) {
    float* image = dx + static_cast<long>(b) * s.inH * s.inW * s.inC;
    for (int r = 0; r < s.outH; ++r) {
      for (int q = 0; q < s.outW; ++q, ++row) {
        const float* src = col + row * patch;
        for (int i = 0; i < s.fH; ++i) {
          const int ir = r * s.sH + i * s.dH - s.padTop;
          for (int j = 0; j < s.fW; ++j, src += s.inC) {
            const int jc = q * s.sW + j * s.dW - s.padLeft;
            if (ir < 0 || ir >= s.inH || jc < 0 || jc >= s.inW) continue;
            float* dst = image + (static_cast<long>(ir) * s.inW + jc) * s.inC;
            for (int c = 0; c < s.inC; ++c) dst[c] += src[c];
          }
        }
      }
    }
  }
}

int imagesPerBlock(const ConvShape& s) {
  const long perImage = static_cast<long>(s.outH) * s.outW * s.fH * s.fW * s.inC;
  return static_cast<int>(std::max<long>(1, kBlockElements / std::max<long>(1, perImage)));
}

// Runs body(b0, b1, threadIndex) over contiguous image ranges, one range per thread,
// each range cut into blocks of at most imagesPerBlock images.
double convFlops(const ConvShape& s) {
  return 2.0 * s.batch * s.outH * s.outW * static_cast<double>(s.fH) * s.fW * s.inC * s.outC;
}

template <typename Body>
void forImageBlocks(const ConvShape& s, int threads, Body body) {
  const int block = imagesPerBlock(s);
  const int used = convFlops(s) < kParallelMinFlops ? 1 : std::max(1, std::min(threads, s.batch));
#ifdef _OPENMP
#pragma omp parallel num_threads(used) if (used > 1)
#endif
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    const int begin = static_cast<int>(static_cast<long>(s.batch) * t / used);
    const int end = static_cast<int>(static_cast<long>(s.batch) * (t + 1) / used);
    for (int b0 = begin; b0 < end; b0 += block) body(b0, std::min(end, b0 + block), t);
  }
}

}  // namespace

// col[(img·outH + r)·outW + q, (i·fW + j)·inC + c] = x[b0 + img, r·sH + i·dH − padTop, q·sW + j·dW − padLeft, c]
void im2col(const float* x, const ConvShape& s, int b0, int b1, float* col) {
  const long patch = static_cast<long>(s.fH) * s.fW * s.inC;
  const size_t channelBytes = sizeof(float) * s.inC;
  long row = 0;
  for (int b = b0; b < b1; ++b) {
    const float* image = x + static_cast<long>(b) * s.inH * s.inW * s.inC;
    for (int r = 0; r < s.outH; ++r) {
      for (int q = 0; q < s.outW; ++q, ++row) {
        float* dst = col + row * patch;
        for (int i = 0; i < s.fH; ++i) {
          const int ir = r * s.sH + i * s.dH - s.padTop;
          for (int j = 0; j < s.fW; ++j, dst += s.inC) {
            const int jc = q * s.sW + j * s.dW - s.padLeft;
            if (ir < 0 || ir >= s.inH || jc < 0 || jc >= s.inW) {
              std::memset(dst, 0, channelBytes);
            } else {
              std::memcpy(dst, image + (static_cast<long>(ir) * s.inW + jc) * s.inC, channelBytes);
            }
          }
        }
      }
    }
  }
}

void validate(const ConvShape& s) {
  const int dims[] = {s.batch, s.inH, s.inW, s.inC, s.outH, s.outW, s.outC, s.fH, s.fW, s.sH, s.sW, s.dH, s.dW};
  for (int d : dims) {
    if (d <= 0) throw std::invalid_argument("conv2d: every dimension, stride and dilation must be positive");
  }
  if (s.padTop < 0 || s.padLeft < 0) throw std::invalid_argument("conv2d: pads must be non-negative");
}

void conv2dForward(const float* x, const float* w, const ConvShape& s, float* y) {
  validate(s);
  const long patch = static_cast<long>(s.fH) * s.fW * s.inC;
  const long rowsPerImage = static_cast<long>(s.outH) * s.outW;
  ConstMap W(w, patch, s.outC);
  if (isPointwise(s)) {
    forImageBlocks(s, threadsNow(), [&](int b0, int b1, int) {
      const long rows = rowsPerImage * (b1 - b0);
      MutMap(y + b0 * rowsPerImage * s.outC, rows, s.outC).noalias() =
          ConstMap(x + b0 * rowsPerImage * s.inC, rows, s.inC) * W;
    });
    return;
  }
  const int threads = threadsNow();
  std::vector<std::vector<float>> buffers(threads);
  forImageBlocks(s, threads, [&](int b0, int b1, int t) {
    const long rows = rowsPerImage * (b1 - b0);
    std::vector<float>& col = buffers[t];
    if (static_cast<long>(col.size()) < rows * patch) col.resize(rows * patch);
    im2col(x, s, b0, b1, col.data());
    MutMap(y + b0 * rowsPerImage * s.outC, rows, s.outC).noalias() = ConstMap(col.data(), rows, patch) * W;
  });
}

void conv2dBackpropInput(const float* dy, const float* w, const ConvShape& s, float* dx) {
  validate(s);
  const long patch = static_cast<long>(s.fH) * s.fW * s.inC;
  const long rowsPerImage = static_cast<long>(s.outH) * s.outW;
  const long imageSize = static_cast<long>(s.inH) * s.inW * s.inC;
  ConstMap W(w, patch, s.outC);
  if (isPointwise(s)) {
    forImageBlocks(s, threadsNow(), [&](int b0, int b1, int) {
      const long rows = rowsPerImage * (b1 - b0);
      MutMap(dx + b0 * imageSize, rows, s.inC).noalias() =
          ConstMap(dy + b0 * rowsPerImage * s.outC, rows, s.outC) * W.transpose();
    });
    return;
  }
  const int threads = threadsNow();
  std::vector<std::vector<float>> buffers(threads);
  forImageBlocks(s, threads, [&](int b0, int b1, int t) {
    const long rows = rowsPerImage * (b1 - b0);
    std::vector<float>& col = buffers[t];
    if (static_cast<long>(col.size()) < rows * patch) col.resize(rows * patch);
    MutMap(col.data(), rows, patch).noalias() = ConstMap(dy + b0 * rowsPerImage * s.outC, rows, s.outC) * W.transpose();
    std::fill(dx + b0 * imageSize, dx + b1 * imageSize, 0.0f);
    col2imAdd(col.data(), s, b0, b1, dx);
  });
}

void conv2dBackpropFilter(const float* x, const float* dy, const ConvShape& s, float* dw) {
  validate(s);
  const long patch = static_cast<long>(s.fH) * s.fW * s.inC;
  const long rowsPerImage = static_cast<long>(s.outH) * s.outW;
  const int threads = convFlops(s) < kParallelMinFlops ? 1 : std::max(1, std::min(threadsNow(), s.batch));
  std::vector<RowMat> partial(threads);
  std::vector<std::vector<float>> buffers(threads);
  const bool pointwise = isPointwise(s);
  forImageBlocks(s, threads, [&](int b0, int b1, int t) {
    RowMat& acc = partial[t];
    if (acc.size() == 0) acc = RowMat::Zero(patch, s.outC);
    const long rows = rowsPerImage * (b1 - b0);
    ConstMap dY(dy + b0 * rowsPerImage * s.outC, rows, s.outC);
    if (pointwise) {
      acc.noalias() += ConstMap(x + b0 * rowsPerImage * s.inC, rows, s.inC).transpose() * dY;
      return;
    }
    std::vector<float>& col = buffers[t];
    if (static_cast<long>(col.size()) < rows * patch) col.resize(rows * patch);
    im2col(x, s, b0, b1, col.data());
    acc.noalias() += ConstMap(col.data(), rows, patch).transpose() * dY;
  });
  MutMap out(dw, patch, s.outC);
  out.setZero();
  for (const RowMat& acc : partial) {
    if (acc.size() != 0) out += acc;
  }
}

void batchMatMul(const float* a, const float* b, int batchA, int batchB, int m, int k, int n, bool transA,
                 bool transB, float* c) {
  if (batchA <= 0 || batchB <= 0 || m < 0 || k < 0 || n < 0) {
    throw std::invalid_argument("matMul: batch sizes must be positive and dimensions non-negative");
  }
  const int batch = std::max(batchA, batchB);
  if (batchA != batch && batchA != 1) throw std::invalid_argument("matMul: batch sizes do not broadcast");
  if (batchB != batch && batchB != 1) throw std::invalid_argument("matMul: batch sizes do not broadcast");
  const long sizeA = static_cast<long>(m) * k, sizeB = static_cast<long>(k) * n, sizeC = static_cast<long>(m) * n;
  // One product, restricted to output rows [r0, r1) and columns [c0, c1).
  auto part = [&](int index, int r0, int r1, int c0, int c1) {
    const float* pa = a + (batchA == 1 ? 0 : index * sizeA);
    const float* pb = b + (batchB == 1 ? 0 : index * sizeB);
    MutMap Cfull(c + index * sizeC, m, n);
    auto C = Cfull.block(r0, c0, r1 - r0, c1 - c0);
    if (k == 0) {
      C.setZero();
      return;
    }
    ConstMap A(pa, transA ? k : m, transA ? m : k);
    ConstMap B(pb, transB ? n : k, transB ? k : n);
    if (!transA && !transB) C.noalias() = A.middleRows(r0, r1 - r0) * B.middleCols(c0, c1 - c0);
    else if (transA && !transB) C.noalias() = A.middleCols(r0, r1 - r0).transpose() * B.middleCols(c0, c1 - c0);
    else if (!transA && transB) C.noalias() = A.middleRows(r0, r1 - r0) * B.middleRows(c0, c1 - c0).transpose();
    else C.noalias() = A.middleCols(r0, r1 - r0).transpose() * B.middleRows(c0, c1 - c0).transpose();
  };
  const int threads = threadsNow();
  const double flops = 2.0 * m * n * static_cast<double>(k) * batch;
  if (threads <= 1 || flops < kParallelMinFlops) {
    for (int index = 0; index < batch; ++index) part(index, 0, m, 0, n);
    return;
  }
  if (batch >= threads) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
    for (int index = 0; index < batch; ++index) part(index, 0, m, 0, n);
    return;
  }
  // Few products: split each one's output over the threads along its longer side.
  const bool byRows = m >= n;
  const int extent = byRows ? m : n;
  const int used = std::max(1, std::min(threads, extent / 8));
  for (int index = 0; index < batch; ++index) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(used)
#endif
    for (int t = 0; t < used; ++t) {
      const int lo = static_cast<int>(static_cast<long>(extent) * t / used);
      const int hi = static_cast<int>(static_cast<long>(extent) * (t + 1) / used);
      if (byRows) part(index, lo, hi, 0, n);
      else part(index, 0, m, lo, hi);
    }
  }
}

double measureGemmGflops(int n, int reps) {
  if (n <= 0 || reps <= 0) throw std::invalid_argument("measureGemmGflops: n and reps must be positive");
  RowMat A = RowMat::Random(n, n), B = RowMat::Random(n, n), C(n, n);
  batchMatMul(A.data(), B.data(), 1, 1, n, n, n, false, false, C.data());  // warm up
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) batchMatMul(A.data(), B.data(), 1, 1, n, n, n, false, false, C.data());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  volatile float sink = C(0, 0);
  (void)sink;
  return 2.0 * n * n * static_cast<double>(n) * reps / seconds / 1e9;
}

int threadCount() { return threadsNow(); }

void setThreadCount(int n) {
#ifdef _OPENMP
  static const int defaultThreads = omp_get_max_threads();
  omp_set_num_threads(n > 0 ? n : defaultThreads);
#else
  (void)n;
#endif
}

}  // namespace advcorrect::kernels
