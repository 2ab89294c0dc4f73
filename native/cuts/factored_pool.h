// A compact cut pool for long gradient cuts: rows whose Dense-layer kernel blocks are rank-one
// outer products x ⊗ d (a per-example gradient: layer input ⊗ gradient at the layer output) are
// kept as their factors, the other coordinates of the row (biases, convolution kernels, …) as a
// compact "rest" vector; rows that are not of that form (the clean-loss cut, a sum over many
// images) are kept dense. The dual active-set method never needs A itself, only
//
//   G = A Aᵀ      ⟨x₁⊗d₁, x₂⊗d₂⟩ = (x₁·x₂)(d₁·d₂);  against a dense row a: x₁ᵀ A_B d₁
//   A w           per block x_iᵀ W_B d_i: one GEMM U = X_uᵀ W_B per block over the distinct x's
//                 (the wrong classes of one example share x), then the dots U_{g(i)}·d_i
//   Aᵀ y          per block Σ_i y_i x_i d_iᵀ = X_u D_gᵀ, D_g = Σ_{i∈g} y_i d_i: one GEMM per block
//
// so a row of a 784–4096–4096–10 MLP (2·10⁷ parameters, 80 MB stored as float32) takes about
// 100 KB. D = I only (no diagonal, no variable bounds: the correction loop's QP); the stored
// CutPool (cut_pool.h) covers the general case. No Node-API here.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <Eigen/Dense>

#include "cuts/cut_pool.h"  // DualWarmState
#include "qp/cut_qp.h"
#include "qp/row_operator.h"

namespace advcorrect::cuts {

// A kernel block of the parameter vector: rows × cols values, row-major, starting at offset;
// a factored row holds it as x (rows values) ⊗ d (cols values): entry (p, q) = x_p · d_q.
struct FactorBlock {
  int64_t offset = 0;
  int rows = 0;
  int cols = 0;
  int64_t size() const { return static_cast<int64_t>(rows) * cols; }
};

// Where the blocks sit in a row of n values, and the coordinates outside them (the "rest", in
// increasing order, as segments of the full vector).
class FactoredLayout {
 public:
  // Blocks must be ordered by offset, not overlap and lie in [0, n), with rows, cols ≥ 1;
  // throws std::invalid_argument otherwise.
  FactoredLayout(int n, std::vector<FactorBlock> blocks);

  int n() const { return n_; }
  const std::vector<FactorBlock>& blocks() const { return blocks_; }
  // Segments (full offset, length) of the coordinates outside every block.
  const std::vector<std::pair<int64_t, int64_t>>& restSegments() const { return rest_; }
  int64_t restSize() const { return rest_size_; }
  // Floats of a row's factors: Σ (rows + cols) over the blocks.
  int64_t factorSize() const { return factor_size_; }

 private:
  int n_;
  std::vector<FactorBlock> blocks_;
  std::vector<std::pair<int64_t, int64_t>> rest_;
  int64_t rest_size_ = 0;
  int64_t factor_size_ = 0;
};

// One row of the factored pool: factored (factors + rest, float32) or dense (n values).
struct FactoredRow {
  int64_t id = 0;
  double lower = -qp::kInfinity;
  double upper = qp::kInfinity;
  bool dense = false;
  std::vector<float> factors;  // factored: per block x (rows) then d (cols), blocks in order
  std::vector<float> rest;     // factored: the rest coordinates, in increasing order
  std::vector<float> dense_f32;   // dense float32 row (n values), or
  std::vector<double> dense_f64;  // dense float64 row
  int inactive_solves = 0;
  double last_multiplier = 0;
  double a_w0 = 0;
  uint64_t w0_key = 0;

  size_t bytes() const;
};

// New rows (id 0 until a pool stores them); they check lengths, finiteness and bounds and throw
// std::invalid_argument.
std::unique_ptr<FactoredRow> MakeFactoredRow(const FactoredLayout& layout, const float* factors, int64_t factor_count,
                                             const float* rest, int64_t rest_count, double lower, double upper);
std::unique_ptr<FactoredRow> MakeDenseFactoredRow(const FactoredLayout& layout, const float* values, double lower,
                                                  double upper);
std::unique_ptr<FactoredRow> MakeDenseFactoredRow(const FactoredLayout& layout, const double* values, double lower,
                                                  double upper);

// aᵀb of two rows of the layout.
double FactoredRowDot(const FactoredLayout& layout, const FactoredRow& a, const FactoredRow& b);
// out[t] = vᵀ a_{rows[t]} for a dense vector v (n values) and factored rows: per block one GEMM
// U = X_uᵀ V_B over the distinct x factors, then U_{g(t)}·d_t; the rest as plain dots.
template <typename T>
void DenseAgainstFactored(const FactoredLayout& layout, const T* v, const std::vector<const FactoredRow*>& rows,
                          double* out);
// The distinct x factors (length values at factor_at) of the rows as the columns of a
// length × g matrix, and each row's column in `group`: the rows of one example share x across
// wrong classes, so products with a block need one column per example, not per row.
Eigen::MatrixXd DistinctX(const std::vector<const FactoredRow*>& rows, int64_t factor_at, int length,
                          std::vector<int>& group);
// The row as n float64 values (x_p·d_q is exact in float64 for float32 factors).
void ExpandFactoredRow(const FactoredLayout& layout, const FactoredRow& row, double* out);

class FactoredCutPool final : public qp::RowOperator {
 public:
  FactoredCutPool(int n, std::vector<FactorBlock> blocks);

  int n() const { return layout_.n(); }
  int size() const { return static_cast<int>(rows_.size()); }
  const FactoredLayout& layout() const { return layout_; }

  // factors: layout().factorSize() floats, rest: layout().restSize() floats. Returns the id.
  int64_t appendFactored(const float* factors, int64_t factor_count, const float* rest, int64_t rest_count,
                         double lower, double upper);
  int64_t appendDense(const float* values, double lower, double upper);
  int64_t appendDense(const double* values, double lower, double upper);

  // Removals keep G exact (its rows and columns are dropped). Each returns how many rows went.
  int remove(const std::vector<int64_t>& ids);
  int removeInactive(int k);

  std::vector<int64_t> ids() const;
  int positionOf(int64_t id) const;
  const FactoredRow& row(int position) const { return *rows_[static_cast<size_t>(position)]; }
  const std::vector<double>& lower() const { return lower_; }
  const std::vector<double>& upper() const { return upper_; }

  // G = A Aᵀ brought up to date (m × m, column-major, leading dimension m).
  qp::GramView gram();
  // Folds pending rows into G, asking stop() between dense rows and between blocks of
  // factored pairs; false when it stopped (the next call folds the pending rows again from the
  // start: a stopped fold keeps nothing). Throws std::length_error
  // when G would exceed CutPool::maxGramBytes().
  bool updateGram(const std::function<bool()>& stop = {});
  bool gramUpToDate() const { return gram_rows_ == rows_.size(); }

  size_t memoryBytes() const;

  // The QP for the dual solver (updates G and A w₀ first unless with_gram is false).
  qp::CutQpProblem problem(const double* w0, bool with_gram = true);
  const std::vector<double>& activityAt(const double* w0);
  void recordSolve(const Eigen::VectorXd& y);
  DualWarmState& dualWarmState() { return warm_; }
  const DualWarmState& dualWarmState() const { return warm_; }

  // RowOperator
  int rows() const override { return size(); }
  int cols() const override { return n(); }
  void multiply(const double* x, double* y) const override;
  void multiplyTransposeAdd(const double* y, double scale, double* x) const override;
  // Only weights == nullptr (D = I); otherwise throws std::invalid_argument.
  void weightedGram(const double* weights, Eigen::MatrixXd& gram) const override;
  double entry(int row, int col) const override;
  double columnDot(int col, const double* y) const override;
  void addColumn(int col, double scale, double* y) const override;

  bool tryAcquire() { return !busy_.exchange(true); }
  void release() { busy_.store(false); }
  bool busy() const { return busy_.load(); }

 private:
  int64_t push(std::unique_ptr<FactoredRow> row);
  void keepPositions(const std::vector<char>& keep);
  // Entries G(i, j) for i in [0, m), j in [from, m) into gram (m × m) from the rows; returns m
  // when done, `from` when stop() asked it to stop.
  size_t fold(size_t from, Eigen::MatrixXd& gram, const std::function<bool()>& stop) const;

  FactoredLayout layout_;
  int64_t next_id_ = 1;
  std::vector<std::unique_ptr<FactoredRow>> rows_;
  std::vector<double> lower_, upper_;
  Eigen::MatrixXd gram_;  // the first gram_rows_ rows and columns are current
  size_t gram_rows_ = 0;
  DualWarmState warm_;
  std::vector<double> a_w0_;
  std::atomic<bool> busy_{false};
};

}  // namespace advcorrect::cuts
