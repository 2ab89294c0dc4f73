// Per-example weight gradients from one batched backward pass. In inference mode the examples
// of a batch are independent, so the gradient of example b's scalar with respect to a layer's
// weights is a product of that example's layer input and its output gradient dY_b:
//   dense   kernel x_b ⊗ dy_b,            bias dy_b
//   conv2d  kernel im2col(x_b)ᵀ · dY_b,    bias Σ_positions dY_b
//   BN      γ Σ_positions dY_b ⊙ x̂_b,      β Σ_positions dY_b   (per channel)
// Each result goes into row b of a caller-provided row-major matrix (row b starts at
// rows + b·rowStride) at the parameter block's offset in the flat weight vector, overwriting
// the block. An offset < 0 means the tensor is not in the row. Examples are split over the
// OpenMP threads. No Node-API here.
#pragma once
#include "kernels/conv.h"

namespace advcorrect::kernels {

// Where the per-example blocks go: row b of the matrix is rows[b·rowStride, (b + 1)·rowStride).
struct RowMatrix {
  float* rows;
  long rowStride;
};

// x [batch, nIn], dy [batch, nOut]; kernel block [nIn, nOut] row-major, bias block [nOut].
void denseExampleGradients(const float* x, const float* dy, int batch, int nIn, int nOut, RowMatrix out,
                           long kernelOffset, long biasOffset);

// x [batch, inH, inW, inC], dy [batch, outH, outW, outC] (NHWC) with the geometry of `s`
// (s.batch examples); kernel block [fH, fW, inC, outC] (TensorFlow layout), bias block [outC].
void conv2dExampleGradients(const float* x, const float* dy, const ConvShape& s, RowMatrix out, long kernelOffset,
                            long biasOffset);

// xhat, dy [batch, positions, channels] (the normalised BN input and the gradient of the BN
// output); γ block [channels], β block [channels].
void batchNormExampleGradients(const float* xhat, const float* dy, int batch, long positions, int channels,
                               RowMatrix out, long gammaOffset, long betaOffset);

}  // namespace advcorrect::kernels
