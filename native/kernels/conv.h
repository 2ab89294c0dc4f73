// Dense float32 kernels for the tensor backend: NHWC 2-D convolution (forward, gradient
// with respect to the input, gradient with respect to the filter) and batched matrix
// products. im2col + Eigen GEMM, images split over OpenMP threads. No Node-API here.
#pragma once
#include <cstdint>

namespace advcorrect::kernels {

// Geometry of one NHWC convolution y = conv(x, w): x [batch, inH, inW, inC],
// w [fH, fW, inC, outC] (TensorFlow layout), y [batch, outH, outW, outC].
// Input row of output row r and filter row i: r·sH + i·dH − padTop (likewise columns).
struct ConvShape {
  int batch, inH, inW, inC;
  int outH, outW, outC;
  int fH, fW;
  int sH, sW;
  int dH, dW;
  int padTop, padLeft;
};

// Throws std::invalid_argument when a dimension is not positive or pads are negative.
void validate(const ConvShape& s);

// The patch matrix of images [b0, b1): row (img·outH + r)·outW + q, column (i·fW + j)·inC + c
// holds x[b0 + img, r·sH + i·dH − padTop, q·sW + j·dW − padLeft, c] (0 outside the image).
// col has (b1 − b0)·outH·outW rows of fH·fW·inC floats.
void im2col(const float* x, const ConvShape& s, int b0, int b1, float* col);

// y = conv(x, w)
void conv2dForward(const float* x, const float* w, const ConvShape& s, float* y);
// dx = ∂/∂x of Σ dy·conv(x, w)   (dx overwritten)
void conv2dBackpropInput(const float* dy, const float* w, const ConvShape& s, float* dx);
// dw = ∂/∂w of Σ dy·conv(x, w)   (dw overwritten)
void conv2dBackpropFilter(const float* x, const float* dy, const ConvShape& s, float* dw);

// c[b] = op(a[b % batchA]) · op(b[b % batchB]) for b < max(batchA, batchB), where
// op(a) is m×k (stored k×m if transA), op(b) is k×n (stored n×k if transB); all row-major.
void batchMatMul(const float* a, const float* b, int batchA, int batchB, int m, int k, int n, bool transA,
                 bool transB, float* c);

// Measures single-precision GEMM throughput (n×n times n×n, `reps` times) with all threads;
// returns GFLOP/s (2n³ flops per product).
double measureGemmGflops(int n, int reps);

// Threads the kernels use (OpenMP), and a way to change it (n ≤ 0: the default).
int threadCount();
void setThreadCount(int n);

}  // namespace advcorrect::kernels
