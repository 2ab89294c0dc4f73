// The constraint rows of a cut QP as seen by a solver: A (m×n) only through products,
// so the cut pool can keep its rows in whatever compact form it likes.
#pragma once
#include <Eigen/Dense>

namespace advcorrect::qp {

class RowOperator {
 public:
  virtual ~RowOperator() = default;
  virtual int rows() const = 0;
  virtual int cols() const = 0;
  // y = A x   (x: cols(), y: rows())
  virtual void multiply(const double* x, double* y) const = 0;
  // x += scale · Aᵀ y
  virtual void multiplyTransposeAdd(const double* y, double scale, double* x) const = 0;
  // G = A diag(weights) Aᵀ  (weights: cols(); G resized to rows()×rows())
  virtual void weightedGram(const double* weights, Eigen::MatrixXd& gram) const = 0;
  // Column access, which the dual solver needs for variable bounds.
  virtual double entry(int row, int col) const = 0;                        // a_row,col
  virtual double columnDot(int col, const double* y) const = 0;            // A[:, col]ᵀ y
  virtual void addColumn(int col, double scale, double* y) const = 0;      // y += scale · A[:, col]
};

}  // namespace advcorrect::qp
