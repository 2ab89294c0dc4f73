#include "cuts/cut_pool.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace advcorrect::cuts {

namespace {

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using GramMap = Eigen::Map<Eigen::MatrixXd, 0, Eigen::OuterStride<>>;

// Bytes the panel of new rows (n × k, float64) may take; larger appends are split into panels.
constexpr size_t kPanelBytes = size_t{96} << 20;
// Many new rows: tiles of kTileRows stored rows × up to kTileCols columns are converted to float64
// in a buffer that stays in L2 with the matching panel rows, and multiplied in small GEMMs.
constexpr Eigen::Index kTileRows = 16;
constexpr Eigen::Index kTileCols = 2048;
constexpr size_t kPanelTileBytes = size_t{256} << 10;
// Otherwise (float32 panels, or up to kDirectPanelMax float64 panel rows): stored rows are read
// in place, four at a time, in chunks of kDirectChunk columns, and dotted with the panel by a
// register-blocked kernel; no copy of A is made. Threads split the columns in both cases, so A
// is read once per panel.
constexpr Eigen::Index kDirectPanelMax = 16;
constexpr Eigen::Index kDirectChunk = 2048;
// A pool whose non-zeros exceed this multiple of m + n counts as having costly rows (see
// CutQpProblem::costly_rows): no CSC copy, and the dual solver refreshes w sparingly.
constexpr size_t kCostlyRowsFactor = 64;
// Sparse rows at least this dense are expanded chunk by chunk for the kernels above; sparser
// ones use gathered dot products.
constexpr double kTiledDensity = 0.125;

template <typename T>
bool AllFinite(const T* values, size_t count) {
  for (size_t k = 0; k < count; ++k) {
    if (!std::isfinite(static_cast<double>(values[k]))) return false;
  }
  return true;
}

void CheckBounds(double lower, double upper) {
  if (std::isnan(lower) || std::isnan(upper)) throw std::invalid_argument("row bounds must not be NaN");
  if (lower > upper) throw std::invalid_argument("row lower bound exceeds its upper bound");
  if (lower == qp::kInfinity || upper == -qp::kInfinity) {
    throw std::invalid_argument("row bounds must not be +Infinity (lower) or -Infinity (upper)");
  }
}

// Writes row's entries in columns [j0, j0 + len) into out (len values, zeros elsewhere).
// cursor is the row's position in its sparse index, advanced across successive tiles.
void TileOfRow(const CutRow& row, Eigen::Index j0, Eigen::Index len, size_t& cursor, double* out) {
  if (!row.sparse) {
    if (row.single) {
      const float* src = row.values_f32.data() + j0;
      for (Eigen::Index q = 0; q < len; ++q) out[q] = static_cast<double>(src[q]);
    } else {
      std::memcpy(out, row.values_f64.data() + j0, static_cast<size_t>(len) * sizeof(double));
    }
    return;
  }
  std::fill(out, out + len, 0.0);
  const size_t count = row.index.size();
  const int32_t end = static_cast<int32_t>(j0 + len);
  for (; cursor < count && row.index[cursor] < end; ++cursor) {
    out[row.index[cursor] - j0] = row.single ? static_cast<double>(row.values_f32[cursor]) : row.values_f64[cursor];
  }
}

// SIMD lanes of float64 for the fold kernel (GCC/Clang vector extensions), as wide as the
// target's registers so the vectors stay in registers (and out of the ABI).
#if defined(__AVX512F__)
constexpr int kLanes = 8;
#elif defined(__AVX__)
constexpr int kLanes = 4;
#else
constexpr int kLanes = 2;
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

// aᵀcol for a sparse stored row, through its non-zeros.
template <typename P>
double GatherDot(const CutRow& row, const P* col) {
  double sum = 0;
  for (size_t k = 0; k < row.index.size(); ++k) {
    const double v = row.single ? static_cast<double>(row.values_f32[k]) : row.values_f64[k];
    sum += v * static_cast<double>(col[row.index[k]]);
  }
  return sum;
}

// The split of the columns [0, n) among the threads of a parallel region.
std::pair<Eigen::Index, Eigen::Index> ThreadColumns(int n) {
  int threads = 1, thread = 0;
#ifdef _OPENMP
  threads = omp_get_num_threads();
  thread = omp_get_thread_num();
#endif
  return {static_cast<Eigen::Index>(static_cast<long long>(n) * thread / threads),
          static_cast<Eigen::Index>(static_cast<long long>(n) * (thread + 1) / threads)};
}

// Where each stored row's sparse entries for columns ≥ j_begin start (0 for dense rows).
std::vector<size_t> SparseCursors(const std::vector<std::unique_ptr<CutRow>>& rows, const std::vector<size_t>& stored,
                                  Eigen::Index j_begin) {
  std::vector<size_t> cursors(stored.size(), 0);
  for (size_t q = 0; q < stored.size(); ++q) {
    const CutRow& row = *rows[stored[q]];
    if (row.sparse) {
      cursors[q] = static_cast<size_t>(std::lower_bound(row.index.begin(), row.index.end(), static_cast<int32_t>(j_begin)) -
                                       row.index.begin());
    }
  }
  return cursors;
}

// products(q, t) = a_{stored[q]}ᵀ panel[t]: the stored rows are read in place four at a time,
// float32 rows and float64 rows in separate groups (sparse rows are expanded into scratch); a
// short last quad repeats its final row.
template <typename P>
void FoldDirect(const std::vector<std::unique_ptr<CutRow>>& rows, int n, const std::vector<size_t>& stored,
                const std::vector<const P*>& panel, Eigen::MatrixXd& products) {
  const Eigen::Index k = static_cast<Eigen::Index>(panel.size());
  std::vector<size_t> single_rows, double_rows;  // positions in `stored`
  for (size_t q = 0; q < stored.size(); ++q) {
    const CutRow& row = *rows[stored[q]];
    (!row.sparse && row.single ? single_rows : double_rows).push_back(q);
  }
  // Columns per chunk: the panel's share of a chunk stays within kPanelTileBytes (L2).
  const Eigen::Index chunk = std::clamp<Eigen::Index>(
      static_cast<Eigen::Index>(kPanelTileBytes / (sizeof(P) * static_cast<size_t>(k))) / kLanes * kLanes, 8 * kLanes,
      kDirectChunk);
#pragma omp parallel
  {
    const auto [j_begin, j_end] = ThreadColumns(n);
    std::vector<size_t> cursors = SparseCursors(rows, stored, j_begin);
    Eigen::MatrixXd partial = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(stored.size()), k);
    Eigen::MatrixXd scratch(chunk, 4);
    std::vector<double> sums(4 * static_cast<size_t>(k));
    const auto add_sums = [&](const std::array<size_t, 4>& quad) {
      for (size_t r = 0; r < 4 && (r == 0 || quad[r] != quad[r - 1]); ++r) {
        for (Eigen::Index t = 0; t < k; ++t) partial(static_cast<Eigen::Index>(quad[r]), t) += sums[r * static_cast<size_t>(k) + static_cast<size_t>(t)];
      }
    };
    for (Eigen::Index j0 = j_begin; j0 < j_end; j0 += chunk) {
      const Eigen::Index len = std::min(chunk, j_end - j0);
      for (const std::vector<size_t>* group : {&single_rows, &double_rows}) {
        for (size_t g = 0; g < group->size(); g += 4) {
          std::array<size_t, 4> quad;
          for (size_t r = 0; r < 4; ++r) quad[r] = (*group)[std::min(g + r, group->size() - 1)];
          std::fill(sums.begin(), sums.end(), 0.0);
          if (group == &single_rows) {
            std::array<const float*, 4> x;
            for (size_t r = 0; r < 4; ++r) x[r] = rows[stored[quad[r]]]->values_f32.data() + j0;
            QuadDots(x, panel.data(), j0, k, len, sums.data());
          } else {
            std::array<const double*, 4> x;
            for (size_t r = 0; r < 4; ++r) {
              const CutRow& row = *rows[stored[quad[r]]];
              if (r > 0 && quad[r] == quad[r - 1]) {
                x[r] = x[r - 1];
              } else if (row.sparse) {
                double* out = scratch.col(static_cast<Eigen::Index>(r)).data();
                TileOfRow(row, j0, len, cursors[quad[r]], out);
                x[r] = out;
              } else {
                x[r] = row.values_f64.data() + j0;
              }
            }
            QuadDots(x, panel.data(), j0, k, len, sums.data());
          }
          add_sums(quad);
        }
      }
    }
#pragma omp critical
    products += partial;
  }
}

// products(q, t) = a_{stored[q]}ᵀ panel.col(t) for many float64 panel columns: tiles of stored rows
// converted to float64 meet the panel in small GEMMs, columns split across threads.
void FoldTiled(const std::vector<std::unique_ptr<CutRow>>& rows, int n, const std::vector<size_t>& stored,
               const Eigen::MatrixXd& panel, Eigen::MatrixXd& products) {
  const Eigen::Index k = panel.cols();
  const Eigen::Index rt = static_cast<Eigen::Index>(stored.size());
  const Eigen::Index chunk = std::clamp<Eigen::Index>(
      static_cast<Eigen::Index>(kPanelTileBytes / (sizeof(double) * static_cast<size_t>(k))), 64, kTileCols);
#pragma omp parallel
  {
    const auto [j_begin, j_end] = ThreadColumns(n);
    std::vector<size_t> cursors = SparseCursors(rows, stored, j_begin);
    Eigen::MatrixXd partial = Eigen::MatrixXd::Zero(rt, k);
    RowMajorMatrix tile(kTileRows, chunk);
    for (Eigen::Index j0 = j_begin; j0 < j_end; j0 += chunk) {
      const Eigen::Index len = std::min(chunk, j_end - j0);
      const auto panel_tile = panel.middleRows(j0, len);
      for (Eigen::Index q0 = 0; q0 < rt; q0 += kTileRows) {
        const Eigen::Index count = std::min(kTileRows, rt - q0);
        for (Eigen::Index q = 0; q < count; ++q) {
          const size_t at = static_cast<size_t>(q0 + q);
          TileOfRow(*rows[stored[at]], j0, len, cursors[at], tile.row(q).data());
        }
        partial.middleRows(q0, count).noalias() += tile.topLeftCorner(count, len) * panel_tile;
      }
    }
#pragma omp critical
    products += partial;
  }
}

// Fills G(i, c) and G(c, i) for all i < c1 and c in [c0, c1): the Gram entries between rows
// [0, c1) and the panel of rows [c0, c1), under weights (n values, null = ones).
void GramPanel(const std::vector<std::unique_ptr<CutRow>>& rows, int n, const double* weights, size_t c0,
               size_t c1, GramMap gram) {
  const Eigen::Index k = static_cast<Eigen::Index>(c1 - c0);
  // Stored rows read in bulk, and very sparse ones, which use gathered dot products.
  std::vector<size_t> stored, gathered;
  for (size_t i = 0; i < c1; ++i) {
    const CutRow& row = *rows[i];
    (!row.sparse || static_cast<double>(row.nnz()) >= kTiledDensity * n ? stored : gathered).push_back(i);
  }
  Eigen::MatrixXd products = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(stored.size()), k);
  const auto store = [&](size_t i, Eigen::Index t, double v) {
    gram(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c0) + t) = v;
    gram(static_cast<Eigen::Index>(c0) + t, static_cast<Eigen::Index>(i)) = v;
  };
  const auto fold_gathered = [&](const auto& columns) {
    const long long count = static_cast<long long>(gathered.size());
#pragma omp parallel for schedule(dynamic, 4) if (count > 8)
    for (long long s = 0; s < count; ++s) {
      const size_t i = gathered[static_cast<size_t>(s)];
      for (Eigen::Index t = 0; t < k; ++t) store(i, t, GatherDot(*rows[i], columns[static_cast<size_t>(t)]));
    }
  };

  bool new_rows_single_dense = true;
  for (size_t c = c0; c < c1; ++c) new_rows_single_dense = new_rows_single_dense && !rows[c]->sparse && rows[c]->single;
  if (!weights && new_rows_single_dense) {
    // The usual case (D = I, float32 gradient cuts): the new rows' own values serve as the
    // panel, with no copy, and the direct kernel beats the GEMM even for large panels.
    std::vector<const float*> columns;
    for (size_t c = c0; c < c1; ++c) columns.push_back(rows[c]->values_f32.data());
    if (!stored.empty()) FoldDirect(rows, n, stored, columns, products);
    fold_gathered(columns);
  } else {
    Eigen::MatrixXd panel(n, k);  // column t = weights ⊙ a_{c0+t}
#pragma omp parallel for schedule(static) if (k > 1)
    for (Eigen::Index t = 0; t < k; ++t) rows[c0 + static_cast<size_t>(t)]->toDense(panel.col(t).data(), weights, n);
    std::vector<const double*> columns;
    for (Eigen::Index t = 0; t < k; ++t) columns.push_back(panel.col(t).data());
    if (!stored.empty()) {
      if (k <= kDirectPanelMax) {
        FoldDirect(rows, n, stored, columns, products);
      } else {
        FoldTiled(rows, n, stored, panel, products);
      }
    }
    fold_gathered(columns);
  }
  for (size_t q = 0; q < stored.size(); ++q) {
    for (Eigen::Index t = 0; t < k; ++t) store(stored[q], t, products(static_cast<Eigen::Index>(q), t));
  }
}

// Fills the Gram entries of rows [from, m) against rows [0, m), panel by panel, asking stop()
// (if given) between panels. Returns the number of rows whose entries are complete.
size_t GramRange(const std::vector<std::unique_ptr<CutRow>>& rows, int n, const double* weights, size_t from,
                 GramMap gram, const std::function<bool()>& stop) {
  const size_t m = rows.size();
  const size_t panel = std::max<size_t>(1, std::min<size_t>(512, kPanelBytes / (sizeof(double) * std::max(n, 1))));
  for (size_t c0 = from; c0 < m; c0 += panel) {
    if (stop && stop()) return c0;
    GramPanel(rows, n, weights, c0, std::min(m, c0 + panel), gram);
  }
  return m;
}

}  // namespace

// ---- CutRow ----

int CutRow::nnz() const {
  if (sparse) return static_cast<int>(index.size());
  return static_cast<int>(single ? values_f32.size() : values_f64.size());
}

size_t CutRow::bytes() const {
  return sizeof(CutRow) + index.capacity() * sizeof(int32_t) + values_f32.capacity() * sizeof(float) +
         values_f64.capacity() * sizeof(double);
}

double CutRow::dot(const double* x) const {
  const size_t count = static_cast<size_t>(nnz());
  double sum = 0;
  if (sparse) {
    if (single) {
      for (size_t k = 0; k < count; ++k) sum += static_cast<double>(values_f32[k]) * x[index[k]];
    } else {
      for (size_t k = 0; k < count; ++k) sum += values_f64[k] * x[index[k]];
    }
    return sum;
  }
  const Eigen::Index len = static_cast<Eigen::Index>(count);
  return single ? DenseDot(values_f32.data(), x, len) : DenseDot(values_f64.data(), x, len);
}

void CutRow::addTo(double scale, double* x) const {
  const size_t count = static_cast<size_t>(nnz());
  if (sparse) {
    if (single) {
      for (size_t k = 0; k < count; ++k) x[index[k]] += scale * static_cast<double>(values_f32[k]);
    } else {
      for (size_t k = 0; k < count; ++k) x[index[k]] += scale * values_f64[k];
    }
    return;
  }
  const Eigen::Index len = static_cast<Eigen::Index>(count);
  Eigen::Map<Eigen::VectorXd> xv(x, len);
  if (single) {
    xv += scale * Eigen::Map<const Eigen::VectorXf>(values_f32.data(), len).cast<double>();
  } else {
    xv += scale * Eigen::Map<const Eigen::VectorXd>(values_f64.data(), len);
  }
}

double CutRow::entry(int col) const {
  if (!sparse) return single ? static_cast<double>(values_f32[static_cast<size_t>(col)]) : values_f64[static_cast<size_t>(col)];
  auto it = std::lower_bound(index.begin(), index.end(), col);
  if (it == index.end() || *it != col) return 0.0;
  const size_t k = static_cast<size_t>(it - index.begin());
  return single ? static_cast<double>(values_f32[k]) : values_f64[k];
}

void CutRow::toDense(double* out, const double* weights, int n) const {
  std::fill(out, out + n, 0.0);
  const size_t count = static_cast<size_t>(nnz());
  for (size_t k = 0; k < count; ++k) {
    const size_t j = sparse ? static_cast<size_t>(index[k]) : k;
    const double v = single ? static_cast<double>(values_f32[k]) : values_f64[k];
    out[j] = weights ? v * weights[j] : v;
  }
}

// ---- CutPool ----

CutPool::CutPool(int n) : n_(n) {
  if (n <= 0) throw std::invalid_argument("the number of variables must be a positive integer");
}

void CutPool::setDiagonal(const Eigen::VectorXd& diagonal) {
  if (diagonal.size() != 0 && diagonal.size() != n_) throw std::invalid_argument("diagonal must have n entries");
  for (Eigen::Index j = 0; j < diagonal.size(); ++j) {
    if (!(diagonal[j] > 0) || !std::isfinite(diagonal[j])) {
      throw std::invalid_argument("diagonal entries must be positive and finite");
    }
  }
  diagonal_ = diagonal;
  gram_rows_ = 0;
}

void CutPool::setBounds(const Eigen::VectorXd& lower, const Eigen::VectorXd& upper) {
  if (lower.size() != upper.size() || (lower.size() != 0 && lower.size() != n_)) {
    throw std::invalid_argument("variable bounds must have n entries each");
  }
  for (Eigen::Index j = 0; j < lower.size(); ++j) {
    if (std::isnan(lower[j]) || std::isnan(upper[j]) || lower[j] > upper[j] || lower[j] == qp::kInfinity ||
        upper[j] == -qp::kInfinity) {
      throw std::invalid_argument("variable bounds must satisfy lower ≤ upper (no NaN)");
    }
  }
  var_lower_ = lower;
  var_upper_ = upper;
  warm_.valid = false;
}

int64_t CutPool::push(std::unique_ptr<CutRow> row) {
  csc_valid_ = false;
  row->id = next_id_++;
  lower_.push_back(row->lower);
  upper_.push_back(row->upper);
  rows_.push_back(std::move(row));
  return rows_.back()->id;
}

template <typename T>
static std::unique_ptr<CutRow> MakeDense(const T* values, int n, double lower, double upper) {
  CheckBounds(lower, upper);
  if (!AllFinite(values, static_cast<size_t>(n))) throw std::invalid_argument("row values must be finite");
  auto row = std::make_unique<CutRow>();
  row->lower = lower;
  row->upper = upper;
  if constexpr (std::is_same_v<T, float>) {
    row->single = true;
    row->values_f32.assign(values, values + n);
  } else {
    row->values_f64.assign(values, values + n);
  }
  return row;
}

template <typename T>
static std::unique_ptr<CutRow> MakeSparse(const int32_t* index, const T* values, int nnz, int n, double lower,
                                          double upper) {
  CheckBounds(lower, upper);
  if (nnz < 0 || nnz > n) throw std::invalid_argument("sparse row has more entries than variables");
  for (int k = 0; k < nnz; ++k) {
    if (index[k] < 0 || index[k] >= n) throw std::invalid_argument("sparse row index out of range");
    if (k > 0 && index[k] <= index[k - 1]) throw std::invalid_argument("sparse row indices must be strictly increasing");
  }
  if (!AllFinite(values, static_cast<size_t>(nnz))) throw std::invalid_argument("row values must be finite");
  auto row = std::make_unique<CutRow>();
  row->lower = lower;
  row->upper = upper;
  row->sparse = true;
  row->index.assign(index, index + nnz);
  if constexpr (std::is_same_v<T, float>) {
    row->single = true;
    row->values_f32.assign(values, values + nnz);
  } else {
    row->values_f64.assign(values, values + nnz);
  }
  return row;
}

int64_t CutPool::appendDense(const float* values, double lower, double upper) {
  return push(MakeDense(values, n_, lower, upper));
}
int64_t CutPool::appendDense(const double* values, double lower, double upper) {
  return push(MakeDense(values, n_, lower, upper));
}
int64_t CutPool::appendSparse(const int32_t* index, const float* values, int nnz, double lower, double upper) {
  return push(MakeSparse(index, values, nnz, n_, lower, upper));
}
int64_t CutPool::appendSparse(const int32_t* index, const double* values, int nnz, double lower, double upper) {
  return push(MakeSparse(index, values, nnz, n_, lower, upper));
}

void CutPool::keepPositions(const std::vector<char>& keep) {
  csc_valid_ = false;
  const size_t m = rows_.size();
  std::vector<Eigen::Index> kept_gram;
  size_t out = 0;
  for (size_t i = 0; i < m; ++i) {
    if (!keep[i]) continue;
    if (i < gram_rows_) kept_gram.push_back(static_cast<Eigen::Index>(i));
    rows_[out] = std::move(rows_[i]);
    lower_[out] = lower_[i];
    upper_[out] = upper_[i];
    ++out;
  }
  rows_.resize(out);
  lower_.resize(out);
  upper_.resize(out);
  const Eigen::Index g = static_cast<Eigen::Index>(kept_gram.size());
  if (g != static_cast<Eigen::Index>(gram_rows_)) {
    // Compact G in place: kept indices are increasing, so moving forward never overwrites
    // an entry still to be read.
    GramMap gram = gramBlock(gram_rows_);
    for (Eigen::Index c = 0; c < g; ++c) {
      for (Eigen::Index r = 0; r < g; ++r) gram(r, c) = gram(kept_gram[static_cast<size_t>(r)], kept_gram[static_cast<size_t>(c)]);
    }
    gram_rows_ = static_cast<size_t>(g);
  }
}

int CutPool::remove(const std::vector<int64_t>& ids) {
  std::vector<char> keep(rows_.size(), 1);
  int removed = 0;
  for (int64_t id : ids) {
    const int pos = positionOf(id);
    if (pos >= 0 && keep[static_cast<size_t>(pos)]) {
      keep[static_cast<size_t>(pos)] = 0;
      ++removed;
    }
  }
  if (removed) keepPositions(keep);
  return removed;
}

int CutPool::removeInactive(int k) {
  if (k < 1) throw std::invalid_argument("k must be a positive integer");
  std::vector<char> keep(rows_.size(), 1);
  int removed = 0;
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (rows_[i]->inactive_solves >= k) {
      keep[i] = 0;
      ++removed;
    }
  }
  if (removed) keepPositions(keep);
  return removed;
}

int CutPool::removeDuplicates(double tol) {
  if (!(tol >= 0) || tol >= 1) throw std::invalid_argument("tolerance must be in [0, 1)");
  const qp::GramView g = gram();
  const size_t m = rows_.size();
  std::vector<char> keep(m, 1);
  auto close = [tol](double a, double b) {
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::abs(a - b) <= tol * std::max({1.0, std::abs(a), std::abs(b)});
  };
  int removed = 0;
  for (size_t i = 0; i < m; ++i) {
    const double gii = g(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i));
    if (gii == 0 && lower_[i] <= 0 && upper_[i] >= 0) {
      keep[i] = 0;
      ++removed;
    }
  }
  for (size_t j = 0; j < m; ++j) {
    if (!keep[j]) continue;
    const double gjj = g(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(j));
    if (gjj == 0) continue;
    for (size_t i = 0; i < j; ++i) {
      if (!keep[i]) continue;
      const double gii = g(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i));
      if (gii == 0) continue;
      const double cosine = g(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) / std::sqrt(gii * gjj);
      if (cosine < 1 - tol) continue;
      // a_j ≈ c·a_i: compare the bounds of row j divided by c with those of row i.
      const double c = std::sqrt(gjj / gii);
      if (close(lower_[j] / c, lower_[i]) && close(upper_[j] / c, upper_[i])) {
        keep[j] = 0;
        ++removed;
        break;
      }
    }
  }
  if (removed) keepPositions(keep);
  return removed;
}

std::vector<int64_t> CutPool::ids() const {
  std::vector<int64_t> out;
  out.reserve(rows_.size());
  for (const auto& row : rows_) out.push_back(row->id);
  return out;
}

int CutPool::positionOf(int64_t id) const {
  // Ids increase with position (rows are appended with growing ids and removals keep order).
  auto it = std::lower_bound(rows_.begin(), rows_.end(), id,
                             [](const std::unique_ptr<CutRow>& row, int64_t value) { return row->id < value; });
  if (it == rows_.end() || (*it)->id != id) return -1;
  return static_cast<int>(it - rows_.begin());
}

qp::GramView CutPool::gram() {
  updateGram();
  const Eigen::Index m = static_cast<Eigen::Index>(gram_rows_);
  return qp::GramView(gram_storage_.data(), m, m, Eigen::OuterStride<>(std::max<Eigen::Index>(1, static_cast<Eigen::Index>(gram_capacity_))));
}

GramMap CutPool::gramBlock(size_t size) {
  const Eigen::Index s = static_cast<Eigen::Index>(size);
  return GramMap(gram_storage_.data(), s, s, Eigen::OuterStride<>(std::max<Eigen::Index>(1, static_cast<Eigen::Index>(gram_capacity_))));
}

size_t CutPool::maxGramBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return size_t{4} << 30;
  return static_cast<size_t>(pages) * static_cast<size_t>(page_size) / 4;
}

void CutPool::reserveGram(size_t rows) {
  if (rows <= gram_capacity_) return;
  const size_t limit = maxGramBytes();
  if (rows > 0 && rows * rows > limit / sizeof(double)) {
    throw std::length_error("a dense Gram matrix for " + std::to_string(rows) + " rows needs " +
                            std::to_string(rows * rows * sizeof(double) >> 20) + " MiB, more than a quarter of the memory (" +
                            std::to_string(limit >> 20) + " MiB)");
  }
  // A quarter of headroom: appends of a few rows then fold in place until the pool has grown
  // by a quarter, for at most 1.56 times the memory of G itself.
  size_t capacity = std::max(rows + rows / 4, size_t{64});
  if (capacity * capacity > limit / sizeof(double)) capacity = rows;
  std::vector<double> storage(capacity * capacity);
  for (size_t c = 0; c < gram_rows_; ++c) {
    std::copy_n(gram_storage_.data() + c * gram_capacity_, gram_rows_, storage.data() + c * capacity);
  }
  gram_storage_.swap(storage);
  gram_capacity_ = capacity;
}

bool CutPool::updateGram(const std::function<bool()>& stop) {
  const size_t m = rows_.size();
  if (gram_rows_ == m) return true;
  reserveGram(m);
  Eigen::VectorXd weights;
  if (diagonal_.size()) weights = diagonal_.cwiseInverse();
  gram_rows_ = GramRange(rows_, n_, diagonal_.size() ? weights.data() : nullptr, gram_rows_, gramBlock(m), stop);
  return gram_rows_ == m;
}

size_t CutPool::memoryBytes() const {
  size_t bytes = sizeof(CutPool);
  for (const auto& row : rows_) bytes += row->bytes() + sizeof(std::unique_ptr<CutRow>);
  bytes += (lower_.capacity() + upper_.capacity()) * sizeof(double);
  bytes += gram_storage_.capacity() * sizeof(double);
  bytes += a_w0_.capacity() * sizeof(double) + csc_.col_ptr.capacity() * sizeof(int64_t) +
           csc_.row_index.capacity() * sizeof(int32_t) + csc_.values.capacity() * sizeof(double);
  bytes += static_cast<size_t>(diagonal_.size() + var_lower_.size() + var_upper_.size()) * sizeof(double);
  bytes += warm_.row_ids.capacity() * sizeof(int64_t) +
           (warm_.row_signs.capacity() + warm_.bound_vars.capacity() + warm_.bound_signs.capacity()) * sizeof(int);
  return bytes;
}

void CutPool::toCsr(std::vector<int64_t>& row_ptr, std::vector<int32_t>& col_index, std::vector<double>& values) const {
  row_ptr.assign(1, 0);
  col_index.clear();
  values.clear();
  for (const auto& row : rows_) {
    const int count = row->nnz();
    for (int k = 0; k < count; ++k) {
      const size_t kk = static_cast<size_t>(k);
      const double v = row->single ? static_cast<double>(row->values_f32[kk]) : row->values_f64[kk];
      if (!row->sparse && v == 0.0) continue;  // dense rows: keep only non-zeros
      col_index.push_back(row->sparse ? row->index[kk] : k);
      values.push_back(v);
    }
    row_ptr.push_back(static_cast<int64_t>(values.size()));
  }
}

namespace {
uint64_t Fingerprint(const double* x, int n) {
  uint64_t h = 1469598103934665603ULL;
  for (int j = 0; j < n; ++j) {
    uint64_t bits;
    std::memcpy(&bits, &x[j], sizeof bits);
    h = (h ^ bits) * 1099511628211ULL;
    h ^= h >> 29;
  }
  return h == 0 ? 1 : h;
}
}  // namespace

const std::vector<double>& CutPool::activityAt(const double* w0) {
  const uint64_t key = Fingerprint(w0, n_);
  const long long m = static_cast<long long>(rows_.size());
  a_w0_.resize(rows_.size());
#pragma omp parallel for schedule(dynamic, 4) if (m > 8)
  for (long long i = 0; i < m; ++i) {
    CutRow& row = *rows_[static_cast<size_t>(i)];
    if (row.w0_key != key) {
      row.a_w0 = row.dot(w0);
      row.w0_key = key;
    }
    a_w0_[static_cast<size_t>(i)] = row.a_w0;
  }
  return a_w0_;
}

const CutPool::Csc& CutPool::csc() {
  if (csc_valid_) return csc_;
  std::vector<int64_t> row_ptr;
  std::vector<int32_t> cols;
  std::vector<double> vals;
  toCsr(row_ptr, cols, vals);
  csc_.col_ptr.assign(static_cast<size_t>(n_) + 1, 0);
  for (int32_t c : cols) ++csc_.col_ptr[static_cast<size_t>(c) + 1];
  for (size_t j = 0; j < static_cast<size_t>(n_); ++j) csc_.col_ptr[j + 1] += csc_.col_ptr[j];
  csc_.row_index.resize(cols.size());
  csc_.values.resize(cols.size());
  std::vector<int64_t> next(csc_.col_ptr.begin(), csc_.col_ptr.end() - 1);
  for (size_t i = 0; i + 1 < row_ptr.size(); ++i) {
    for (int64_t k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
      const int64_t at = next[static_cast<size_t>(cols[static_cast<size_t>(k)])]++;
      csc_.row_index[static_cast<size_t>(at)] = static_cast<int32_t>(i);
      csc_.values[static_cast<size_t>(at)] = vals[static_cast<size_t>(k)];
    }
  }
  csc_valid_ = true;
  return csc_;
}

qp::CutQpProblem CutPool::problem(const double* w0, bool with_gram) {
  if (with_gram) updateGram();
  activityAt(w0);
  qp::CutQpProblem p;
  p.n = n_;
  p.m = size();
  p.rows = this;
  p.row_lower = lower_.data();
  p.row_upper = upper_.data();
  p.diagonal = diagonal_.size() ? diagonal_.data() : nullptr;
  p.var_lower = var_lower_.size() ? var_lower_.data() : nullptr;
  p.var_upper = var_upper_.size() ? var_upper_.data() : nullptr;
  p.w0 = w0;
  if (with_gram) {
    p.gram = gram_storage_.data();
    p.gram_stride = static_cast<Eigen::Index>(std::max<size_t>(1, gram_capacity_));
  }
  p.a_w0 = a_w0_.data();
  // With bounds the dual solver reads columns of A. Small pools get a CSC copy for that; long
  // rows (gradient cuts: hundreds of non-zeros per variable and row pair) are read in place,
  // since a copy would triple their memory and be rebuilt after every append.
  if (hasBounds()) {
    size_t nnz = 0;
    for (const auto& row : rows_) nnz += static_cast<size_t>(row->nnz());
    p.costly_rows = nnz > kCostlyRowsFactor * (rows_.size() + static_cast<size_t>(n_));
    if (!p.costly_rows) csc();
  }
  return p;
}

void CutPool::recordSolve(const Eigen::VectorXd& y) {
  if (y.size() != static_cast<Eigen::Index>(rows_.size())) return;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const double yi = y[static_cast<Eigen::Index>(i)];
    rows_[i]->last_multiplier = yi;
    rows_[i]->inactive_solves = yi == 0.0 ? rows_[i]->inactive_solves + 1 : 0;
  }
}

void CutPool::multiply(const double* x, double* y) const {
  const long long m = static_cast<long long>(rows_.size());
#pragma omp parallel for schedule(dynamic, 4) if (m > 8)
  for (long long i = 0; i < m; ++i) y[i] = rows_[static_cast<size_t>(i)]->dot(x);
}

void CutPool::multiplyTransposeAdd(const double* y, double scale, double* x) const {
  // Threads split the columns, so no reduction is needed.
#pragma omp parallel
  {
    int threads = 1, thread = 0;
#ifdef _OPENMP
    threads = omp_get_num_threads();
    thread = omp_get_thread_num();
#endif
    const int j0 = static_cast<int>(static_cast<long long>(n_) * thread / threads);
    const int j1 = static_cast<int>(static_cast<long long>(n_) * (thread + 1) / threads);
    for (size_t i = 0; i < rows_.size(); ++i) {
      const double coef = scale * y[i];
      if (coef == 0.0) continue;
      const CutRow& row = *rows_[i];
      if (row.sparse) {
        const auto begin = std::lower_bound(row.index.begin(), row.index.end(), j0);
        for (auto it = begin; it != row.index.end() && *it < j1; ++it) {
          const size_t k = static_cast<size_t>(it - row.index.begin());
          x[*it] += coef * (row.single ? static_cast<double>(row.values_f32[k]) : row.values_f64[k]);
        }
      } else {
        Eigen::Map<Eigen::VectorXd> xv(x + j0, j1 - j0);
        if (row.single) {
          xv += coef * Eigen::Map<const Eigen::VectorXf>(row.values_f32.data() + j0, j1 - j0).cast<double>();
        } else {
          xv += coef * Eigen::Map<const Eigen::VectorXd>(row.values_f64.data() + j0, j1 - j0);
        }
      }
    }
  }
}

double CutPool::entry(int row, int col) const {
  if (!csc_valid_) return rows_[static_cast<size_t>(row)]->entry(col);
  const int32_t* begin = csc_.row_index.data() + csc_.col_ptr[static_cast<size_t>(col)];
  const int32_t* end = csc_.row_index.data() + csc_.col_ptr[static_cast<size_t>(col) + 1];
  const int32_t* it = std::lower_bound(begin, end, row);
  return it != end && *it == row ? csc_.values[static_cast<size_t>(it - csc_.row_index.data())] : 0.0;
}

double CutPool::columnDot(int col, const double* y) const {
  double sum = 0;
  if (csc_valid_) {
    for (int64_t k = csc_.col_ptr[static_cast<size_t>(col)]; k < csc_.col_ptr[static_cast<size_t>(col) + 1]; ++k) {
      sum += csc_.values[static_cast<size_t>(k)] * y[csc_.row_index[static_cast<size_t>(k)]];
    }
    return sum;
  }
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (y[i] != 0) sum += rows_[i]->entry(col) * y[i];
  }
  return sum;
}

void CutPool::addColumn(int col, double scale, double* y) const {
  if (csc_valid_) {
    for (int64_t k = csc_.col_ptr[static_cast<size_t>(col)]; k < csc_.col_ptr[static_cast<size_t>(col) + 1]; ++k) {
      y[csc_.row_index[static_cast<size_t>(k)]] += scale * csc_.values[static_cast<size_t>(k)];
    }
    return;
  }
  for (size_t i = 0; i < rows_.size(); ++i) y[i] += scale * rows_[i]->entry(col);
}

void CutPool::weightedGram(const double* weights, Eigen::MatrixXd& gram) const {
  const Eigen::Index m = static_cast<Eigen::Index>(rows_.size());
  gram.resize(m, m);
  GramRange(rows_, n_, weights, 0, GramMap(gram.data(), m, m, Eigen::OuterStride<>(std::max<Eigen::Index>(1, m))), {});
}

}  // namespace advcorrect::cuts
