// The cut pool: the constraint rows of the cut QP, appended one by one as the cutting-plane
// method finds them, kept compactly (float32 rows stay float32, sparse rows as index/value
// pairs), each with bounds lower ≤ aᵀw ≤ upper and a stable id. It keeps the Gram matrix
// G = A D⁻¹ Aᵀ up to date incrementally (new rows are folded in with one pass over the pool
// the next time G is needed) and remembers per-row solve history for warm starts and pruning.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <Eigen/Dense>

#include "cuts/cut_row.h"
#include "qp/cut_qp.h"
#include "qp/row_operator.h"

namespace advcorrect::cuts {

// Working set kept between solves of the dual active-set method (warm start).
struct DualWarmState {
  std::vector<int64_t> row_ids;      // rows in the working set (by id)
  std::vector<int> row_signs;        // +1 upper side active, −1 lower side
  std::vector<int> bound_vars;       // variables whose bound is in the working set
  std::vector<int> bound_signs;      // +1 upper, −1 lower (same length as bound_vars)
  bool valid = false;
};

class CutPool final : public qp::RowOperator {
 public:
  // n variables; D = identity, no variable bounds.
  explicit CutPool(int n);

  int n() const { return n_; }
  int size() const { return static_cast<int>(rows_.size()); }

  // D (length n, all > 0 and finite). Changing it recomputes G lazily.
  void setDiagonal(const Eigen::VectorXd& diagonal);
  const Eigen::VectorXd& diagonal() const { return diagonal_; }  // empty = identity
  // Variable bounds (length n each, or empty for none); lower ≤ upper.
  void setBounds(const Eigen::VectorXd& lower, const Eigen::VectorXd& upper);
  bool hasBounds() const { return var_lower_.size() > 0; }
  const Eigen::VectorXd& varLower() const { return var_lower_; }
  const Eigen::VectorXd& varUpper() const { return var_upper_; }

  // Append a row; returns its id. Values are copied. Callers validate (lengths, finiteness,
  // sorted in-range indices, lower ≤ upper); the pool checks again and throws
  // std::invalid_argument rather than storing a bad row.
  int64_t appendDense(const float* values, double lower, double upper);
  int64_t appendDense(const double* values, double lower, double upper);
  int64_t appendSparse(const int32_t* index, const float* values, int nnz, double lower, double upper);
  int64_t appendSparse(const int32_t* index, const double* values, int nnz, double lower, double upper);

  // Removals keep G exact (rows and columns are dropped). Each returns how many rows went.
  int remove(const std::vector<int64_t>& ids);
  // Rows whose multiplier was zero in each of the last k solves (k ≥ 1).
  int removeInactive(int k);
  // Near duplicates: for each pair with cosine (in the D⁻¹ metric) ≥ 1 − tol and bounds that
  // agree within tol (after scaling by the norms), the later row goes; rows with all zeros and
  // trivially satisfiable bounds (lower ≤ 0 ≤ upper) go too.
  int removeDuplicates(double tol);

  std::vector<int64_t> ids() const;
  int positionOf(int64_t id) const;  // −1 when absent
  const CutRow& row(int position) const { return *rows_[static_cast<size_t>(position)]; }
  const std::vector<double>& lower() const { return lower_; }
  const std::vector<double>& upper() const { return upper_; }

  // G = A D⁻¹ Aᵀ (m × m), brought up to date first. Not thread-safe with appends.
  qp::GramView gram();
  // Largest dense G a pool allocates: a quarter of the machine's memory (the dual solver's
  // working-set factor and the rows themselves need room too).
  static size_t maxGramBytes();
  bool gramUpToDate() const { return gram_rows_ == rows_.size(); }
  // Folds pending rows into G panel by panel, asking stop() between panels; returns false when
  // it stopped early (G then covers fewer rows, and the next call goes on from there). Throws
  // std::length_error when a dense m × m G would take more than a quarter of the memory.
  bool updateGram(const std::function<bool()>& stop = {});

  size_t memoryBytes() const;

  // A in CSR form (values as float64).
  void toCsr(std::vector<int64_t>& row_ptr, std::vector<int32_t>& col_index, std::vector<double>& values) const;

  // The QP for the solvers (updates G, A w₀ and, with bounds, the CSC copy first). w0 must
  // hold n values and outlive the solve; the problem borrows the pool's buffers, so the pool
  // must not change during the solve. Without with_gram, G is neither updated nor lent (enough
  // for checking residuals).
  qp::CutQpProblem problem(const double* w0, bool with_gram = true);

  // A w₀, reusing each row's cached product when w₀ is unchanged since the last call.
  const std::vector<double>& activityAt(const double* w0);

  // A in CSC form (float64), cached until the rows change.
  struct Csc {
    std::vector<int64_t> col_ptr;
    std::vector<int32_t> row_index;
    std::vector<double> values;
  };
  const Csc& csc();

  // Records a solve's row multipliers (length size()) for removeInactive and warm starts.
  void recordSolve(const Eigen::VectorXd& y);

  DualWarmState& dualWarmState() { return warm_; }
  const DualWarmState& dualWarmState() const { return warm_; }

  // RowOperator
  int rows() const override { return size(); }
  int cols() const override { return n_; }
  void multiply(const double* x, double* y) const override;
  void multiplyTransposeAdd(const double* y, double scale, double* x) const override;
  void weightedGram(const double* weights, Eigen::MatrixXd& gram) const override;
  // Through the CSC copy when it is current (problem() builds it for pools with bounds and
  // few non-zeros), else from the rows.
  double entry(int row, int col) const override;
  double columnDot(int col, const double* y) const override;
  void addColumn(int col, double scale, double* y) const override;

  // A solve running off the main thread holds the pool; mutations must check busy().
  bool tryAcquire() { return !busy_.exchange(true); }
  void release() { busy_.store(false); }
  bool busy() const { return busy_.load(); }

 private:
  int64_t push(std::unique_ptr<CutRow> row);
  // The first `size` rows and columns of G's storage (leading dimension gram_capacity_).
  Eigen::Map<Eigen::MatrixXd, 0, Eigen::OuterStride<>> gramBlock(size_t size);
  void reserveGram(size_t rows);
  void keepPositions(const std::vector<char>& keep);
  double invDiag(int j) const { return diagonal_.size() ? 1.0 / diagonal_[j] : 1.0; }

  int n_;
  int64_t next_id_ = 1;
  Eigen::VectorXd diagonal_;
  Eigen::VectorXd var_lower_, var_upper_;
  std::vector<std::unique_ptr<CutRow>> rows_;
  std::vector<double> lower_, upper_;
  // G for the first gram_rows_ rows, column-major with leading dimension gram_capacity_; the
  // capacity keeps a quarter of headroom so appending a few rows rarely moves (and page-faults) G.
  std::vector<double> gram_storage_;
  size_t gram_capacity_ = 0;
  size_t gram_rows_ = 0;
  DualWarmState warm_;
  std::vector<double> a_w0_;
  Csc csc_;
  bool csc_valid_ = false;
  std::atomic<bool> busy_{false};
};

}  // namespace advcorrect::cuts
