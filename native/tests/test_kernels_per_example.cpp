// C++ checks of the per-example weight gradients (native/kernels/per_example.h) against naive
// loops written from the definitions: dense outer products, conv2d filter gradients of one image
// (strides, dilation, padding, a 1×1 pointwise case), BatchNorm γ/β sums; blocks land at their
// offsets and leave the rest of the row alone; absent blocks (offset −1); bad blocks rejected.
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/per_example.h"
#include "tests/check.h"

using advcorrect::kernels::ConvShape;
using advcorrect::kernels::RowMatrix;
using advcorrect::testing::Check;

namespace {

constexpr float kSentinel = -12345.0f;

std::vector<float> RandomVector(size_t n, std::mt19937& rng, double zeroShare = 0.0) {
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<float> v(n);
  for (float& x : v) x = coin(rng) < zeroShare ? 0.0f : uni(rng);
  return v;
}

double MaxRelativeError(const std::vector<float>& got, const std::vector<double>& want) {
  double scale = 1e-30, err = 0;
  for (size_t i = 0; i < want.size(); ++i) scale = std::max(scale, std::fabs(want[i]));
  for (size_t i = 0; i < want.size(); ++i) err = std::max(err, std::fabs(got[i] - want[i]));
  return err / scale;
}

// The positions of a row outside [lo, hi) blocks must still hold the sentinel.
bool SentinelsKept(const std::vector<float>& rows, long stride, int batch, const std::vector<std::pair<long, long>>& blocks) {
  for (int b = 0; b < batch; ++b) {
    for (long i = 0; i < stride; ++i) {
      bool inside = false;
      for (auto [lo, size] : blocks) inside = inside || (lo >= 0 && i >= lo && i < lo + size);
      if (!inside && rows[static_cast<size_t>(b * stride + i)] != kSentinel) return false;
    }
  }
  return true;
}

void CheckDense() {
  std::mt19937 rng(3);
  const int batch = 5, nIn = 37, nOut = 11;
  const long kernelOffset = 7, biasOffset = kernelOffset + nIn * nOut + 3, stride = biasOffset + nOut + 2;
  auto x = RandomVector(static_cast<size_t>(batch) * nIn, rng, 0.3);  // zeros: the skipped-row path
  auto dy = RandomVector(static_cast<size_t>(batch) * nOut, rng);
  std::vector<float> rows(static_cast<size_t>(batch * stride), kSentinel);
  advcorrect::kernels::denseExampleGradients(x.data(), dy.data(), batch, nIn, nOut, RowMatrix{rows.data(), stride},
                                             kernelOffset, biasOffset);
  std::vector<float> got;
  std::vector<double> want;
  for (int b = 0; b < batch; ++b) {
    for (int p = 0; p < nIn; ++p) {
      for (int q = 0; q < nOut; ++q) {
        got.push_back(rows[static_cast<size_t>(b * stride + kernelOffset + p * nOut + q)]);
        want.push_back(static_cast<double>(x[static_cast<size_t>(b * nIn + p)]) * dy[static_cast<size_t>(b * nOut + q)]);
      }
    }
    for (int q = 0; q < nOut; ++q) {
      got.push_back(rows[static_cast<size_t>(b * stride + biasOffset + q)]);
      want.push_back(dy[static_cast<size_t>(b * nOut + q)]);
    }
  }
  const double err = MaxRelativeError(got, want);
  Check(err < 1e-6, "dense: relative error " + std::to_string(err));
  Check(SentinelsKept(rows, stride, batch, {{kernelOffset, nIn * nOut}, {biasOffset, nOut}}), "dense: only its blocks are written");

  // Without a bias block: the bias positions keep their sentinel.
  std::vector<float> noBias(static_cast<size_t>(batch * stride), kSentinel);
  advcorrect::kernels::denseExampleGradients(x.data(), dy.data(), batch, nIn, nOut, RowMatrix{noBias.data(), stride},
                                             kernelOffset, -1);
  Check(SentinelsKept(noBias, stride, batch, {{kernelOffset, nIn * nOut}}), "dense: bias offset -1 writes no bias");
}

// Naive filter gradient of image b: Σ over output positions of x(patch) · dy.
std::vector<double> NaiveConvFilterGradient(const std::vector<float>& x, const std::vector<float>& dy, const ConvShape& s, int b) {
  std::vector<double> g(static_cast<size_t>(s.fH) * s.fW * s.inC * s.outC, 0.0);
  for (int r = 0; r < s.outH; ++r) {
    for (int q = 0; q < s.outW; ++q) {
      for (int i = 0; i < s.fH; ++i) {
        for (int j = 0; j < s.fW; ++j) {
          const int ir = r * s.sH + i * s.dH - s.padTop, jc = q * s.sW + j * s.dW - s.padLeft;
          if (ir < 0 || ir >= s.inH || jc < 0 || jc >= s.inW) continue;
          for (int c = 0; c < s.inC; ++c) {
            const double xv = x[static_cast<size_t>(((static_cast<long>(b) * s.inH + ir) * s.inW + jc) * s.inC + c)];
            for (int o = 0; o < s.outC; ++o) {
              const double dv = dy[static_cast<size_t>(((static_cast<long>(b) * s.outH + r) * s.outW + q) * s.outC + o)];
              g[static_cast<size_t>(((i * s.fW + j) * s.inC + c) * s.outC + o)] += xv * dv;
            }
          }
        }
      }
    }
  }
  return g;
}

void CheckConv(const ConvShape& s, const std::string& name) {
  std::mt19937 rng(17);
  auto x = RandomVector(static_cast<size_t>(s.batch) * s.inH * s.inW * s.inC, rng);
  auto dy = RandomVector(static_cast<size_t>(s.batch) * s.outH * s.outW * s.outC, rng, 0.4);
  const long kernelSize = static_cast<long>(s.fH) * s.fW * s.inC * s.outC;
  const long biasOffset = 2, kernelOffset = biasOffset + s.outC + 5, stride = kernelOffset + kernelSize + 1;
  std::vector<float> rows(static_cast<size_t>(s.batch * stride), kSentinel);
  advcorrect::kernels::conv2dExampleGradients(x.data(), dy.data(), s, RowMatrix{rows.data(), stride}, kernelOffset, biasOffset);
  std::vector<float> got;
  std::vector<double> want;
  for (int b = 0; b < s.batch; ++b) {
    const std::vector<double> g = NaiveConvFilterGradient(x, dy, s, b);
    for (long i = 0; i < kernelSize; ++i) {
      got.push_back(rows[static_cast<size_t>(b * stride + kernelOffset + i)]);
      want.push_back(g[static_cast<size_t>(i)]);
    }
    for (int o = 0; o < s.outC; ++o) {
      double sum = 0;
      for (long p = 0; p < static_cast<long>(s.outH) * s.outW; ++p) sum += dy[static_cast<size_t>((b * s.outH * s.outW + p) * s.outC + o)];
      got.push_back(rows[static_cast<size_t>(b * stride + biasOffset + o)]);
      want.push_back(sum);
    }
  }
  const double err = MaxRelativeError(got, want);
  Check(err < 1e-5, "conv2d " + name + ": relative error " + std::to_string(err));
  Check(SentinelsKept(rows, stride, s.batch, {{kernelOffset, kernelSize}, {biasOffset, s.outC}}),
        "conv2d " + name + ": only its blocks are written");
}

void CheckBatchNorm() {
  std::mt19937 rng(5);
  const int batch = 4, channels = 6;
  const long positions = 9;
  auto xhat = RandomVector(static_cast<size_t>(batch * positions * channels), rng);
  auto dy = RandomVector(static_cast<size_t>(batch * positions * channels), rng, 0.5);
  const long gammaOffset = 1, betaOffset = 10, stride = 20;
  std::vector<float> rows(static_cast<size_t>(batch * stride), kSentinel);
  advcorrect::kernels::batchNormExampleGradients(xhat.data(), dy.data(), batch, positions, channels,
                                                 RowMatrix{rows.data(), stride}, gammaOffset, betaOffset);
  std::vector<float> got;
  std::vector<double> want;
  for (int b = 0; b < batch; ++b) {
    for (int c = 0; c < channels; ++c) {
      double gamma = 0, beta = 0;
      for (long p = 0; p < positions; ++p) {
        const size_t k = static_cast<size_t>((b * positions + p) * channels + c);
        gamma += static_cast<double>(dy[k]) * xhat[k];
        beta += dy[k];
      }
      got.push_back(rows[static_cast<size_t>(b * stride + gammaOffset + c)]);
      want.push_back(gamma);
      got.push_back(rows[static_cast<size_t>(b * stride + betaOffset + c)]);
      want.push_back(beta);
    }
  }
  const double err = MaxRelativeError(got, want);
  Check(err < 1e-5, "batch norm: relative error " + std::to_string(err));
  Check(SentinelsKept(rows, stride, batch, {{gammaOffset, channels}, {betaOffset, channels}}), "batch norm: only its blocks are written");
}

template <typename F>
void ExpectInvalid(F&& f, const std::string& what) {
  bool threw = false;
  try {
    f();
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  Check(threw, "expected invalid_argument: " + what);
}

void CheckRejections() {
  std::vector<float> x(8, 1.0f), dy(8, 1.0f), rows(64, 0.0f);
  ExpectInvalid([&] { advcorrect::kernels::denseExampleGradients(x.data(), dy.data(), 2, 2, 2, RowMatrix{rows.data(), 4}, 1, -1); },
                "dense kernel block past the row end");
  ExpectInvalid([&] { advcorrect::kernels::denseExampleGradients(x.data(), dy.data(), 0, 2, 2, RowMatrix{rows.data(), 8}, 0, -1); },
                "batch 0");
  ExpectInvalid([&] { advcorrect::kernels::batchNormExampleGradients(x.data(), dy.data(), 2, 2, 2, RowMatrix{rows.data(), 3}, -1, 2); },
                "beta block past the row end");
  const ConvShape s{1, 3, 3, 1, 2, 2, 1, 2, 2, 1, 1, 1, 1, 0, 0};
  ExpectInvalid([&] { advcorrect::kernels::conv2dExampleGradients(x.data(), dy.data(), s, RowMatrix{rows.data(), 4}, 0, 4); },
                "conv bias block past the row end");
}

}  // namespace

int main() {
  CheckDense();
  // batch, inH, inW, inC, outH, outW, outC, fH, fW, sH, sW, dH, dW, padTop, padLeft
  CheckConv(ConvShape{3, 9, 9, 2, 4, 4, 5, 3, 3, 2, 2, 1, 1, 0, 0}, "3×3 stride 2 valid");
  CheckConv(ConvShape{2, 6, 7, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1}, "3×3 same");
  CheckConv(ConvShape{2, 8, 8, 2, 4, 4, 3, 3, 3, 2, 2, 1, 1, 1, 1}, "3×3 stride 2 padded (ResNet downsampling)");
  CheckConv(ConvShape{2, 9, 9, 2, 5, 5, 3, 3, 3, 1, 1, 2, 2, 0, 0}, "3×3 dilation 2");
  CheckConv(ConvShape{3, 5, 4, 6, 5, 4, 2, 1, 1, 1, 1, 1, 1, 0, 0}, "1×1 pointwise");
  // Large enough to run on several threads (more than 2^16 floats written).
  CheckConv(ConvShape{8, 16, 16, 16, 7, 7, 32, 3, 3, 2, 2, 1, 1, 0, 0}, "CNN conv2 shape, threaded");
  CheckBatchNorm();
  CheckRejections();
  return advcorrect::testing::Report();
}
