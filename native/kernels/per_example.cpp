#include "kernels/per_example.h"

// As in conv.cpp: the products are small and split over examples by OpenMP, each one
// single-threaded inside Eigen.
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>
#include <algorithm>
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

// Below this many floats written in all, the work stays on the calling thread (waking an
// OpenMP worker costs more than it saves).
constexpr double kParallelMinElements = 1 << 16;

int threadsFor(int batch, double elements) {
  if (elements < kParallelMinElements) return 1;
  return std::max(1, std::min(threadCount(), batch));
}

// Throws unless every block [offset, offset + size) with offset ≥ 0 lies inside a row.
void checkBlock(const char* what, long offset, long size, long rowStride) {
  if (offset >= 0 && offset + size > rowStride) {
    throw std::invalid_argument(std::string(what) + " block [" + std::to_string(offset) + ", " +
                                std::to_string(offset + size) + ") does not fit in a row of " +
                                std::to_string(rowStride));
  }
}

void checkMatrix(RowMatrix out, int batch) {
  if (batch <= 0) throw std::invalid_argument("per-example gradients: batch must be positive");
  if (out.rows == nullptr || out.rowStride <= 0) {
    throw std::invalid_argument("per-example gradients: the row matrix needs a positive row stride");
  }
}

}  // namespace

void denseExampleGradients(const float* x, const float* dy, int batch, int nIn, int nOut, RowMatrix out,
                           long kernelOffset, long biasOffset) {
  checkMatrix(out, batch);
  if (nIn <= 0 || nOut <= 0) throw std::invalid_argument("dense per-example gradients: nIn and nOut must be positive");
  const long kernelSize = static_cast<long>(nIn) * nOut;
  checkBlock("dense kernel", kernelOffset, kernelSize, out.rowStride);
  checkBlock("dense bias", biasOffset, nOut, out.rowStride);
  const int used = threadsFor(batch, static_cast<double>(batch) * (kernelSize + nOut));
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(used) if (used > 1)
#endif
  for (int b = 0; b < batch; ++b) {
    float* row = out.rows + b * out.rowStride;
    const float* xb = x + static_cast<long>(b) * nIn;
    const float* db = dy + static_cast<long>(b) * nOut;
    if (kernelOffset >= 0) {
      float* block = row + kernelOffset;
      for (int p = 0; p < nIn; ++p) {
        float* dst = block + static_cast<long>(p) * nOut;
        const float xp = xb[p];
        if (xp == 0.0f) {
          std::memset(dst, 0, sizeof(float) * nOut);
          continue;
        }
        for (int q = 0; q < nOut; ++q) dst[q] = xp * db[q];
      }
    }
    if (biasOffset >= 0) std::memcpy(row + biasOffset, db, sizeof(float) * nOut);
  }
}

void conv2dExampleGradients(const float* x, const float* dy, const ConvShape& s, RowMatrix out, long kernelOffset,
                            long biasOffset) {
  validate(s);
  checkMatrix(out, s.batch);
  const long patch = static_cast<long>(s.fH) * s.fW * s.inC;
  const long positions = static_cast<long>(s.outH) * s.outW;
  checkBlock("conv2d kernel", kernelOffset, patch * s.outC, out.rowStride);
  checkBlock("conv2d bias", biasOffset, s.outC, out.rowStride);
  const long imageSize = static_cast<long>(s.inH) * s.inW * s.inC;
  // A 1×1 stride-1 unpadded convolution is its own patch matrix.
  const bool pointwise = s.fH == 1 && s.fW == 1 && s.sH == 1 && s.sW == 1 && s.padTop == 0 && s.padLeft == 0 &&
                         s.outH == s.inH && s.outW == s.inW;
  const double work = static_cast<double>(s.batch) * positions * patch * s.outC;
  const int used = threadsFor(s.batch, work);
  std::vector<std::vector<float>> buffers(used);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(used) if (used > 1)
#endif
  for (int b = 0; b < s.batch; ++b) {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    float* row = out.rows + b * out.rowStride;
    ConstMap dY(dy + b * positions * s.outC, positions, s.outC);
    if (kernelOffset >= 0) {
      const float* col;
      if (pointwise) {
        col = x + b * imageSize;
      } else {
        std::vector<float>& buffer = buffers[static_cast<size_t>(t)];
        if (static_cast<long>(buffer.size()) < positions * patch) buffer.resize(static_cast<size_t>(positions * patch));
        im2col(x, s, b, b + 1, buffer.data());
        col = buffer.data();
      }
      MutMap(row + kernelOffset, patch, s.outC).noalias() = ConstMap(col, positions, patch).transpose() * dY;
    }
    if (biasOffset >= 0) {
      Eigen::Map<Eigen::RowVectorXf>(row + biasOffset, s.outC) = dY.colwise().sum();
    }
  }
}

void batchNormExampleGradients(const float* xhat, const float* dy, int batch, long positions, int channels,
                               RowMatrix out, long gammaOffset, long betaOffset) {
  checkMatrix(out, batch);
  if (positions <= 0 || channels <= 0) {
    throw std::invalid_argument("batch-norm per-example gradients: positions and channels must be positive");
  }
  checkBlock("batch-norm gamma", gammaOffset, channels, out.rowStride);
  checkBlock("batch-norm beta", betaOffset, channels, out.rowStride);
  const int used = threadsFor(batch, static_cast<double>(batch) * positions * channels);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(used) if (used > 1)
#endif
  for (int b = 0; b < batch; ++b) {
    float* row = out.rows + b * out.rowStride;
    ConstMap dY(dy + b * positions * channels, positions, channels);
    if (gammaOffset >= 0) {
      ConstMap xHat(xhat + b * positions * channels, positions, channels);
      Eigen::Map<Eigen::RowVectorXf>(row + gammaOffset, channels) = dY.cwiseProduct(xHat).colwise().sum();
    }
    if (betaOffset >= 0) Eigen::Map<Eigen::RowVectorXf>(row + betaOffset, channels) = dY.colwise().sum();
  }
}

}  // namespace advcorrect::kernels
