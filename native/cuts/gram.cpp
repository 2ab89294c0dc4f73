#include "cuts/gram.h"

#include <algorithm>
#include <array>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cuts/simd_dot.h"

namespace advcorrect::cuts {

namespace {

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

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
// Sparse rows at least this dense are expanded chunk by chunk for the kernels above; sparser
// ones use gathered dot products.
constexpr double kTiledDensity = 0.125;
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

}  // namespace

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

}  // namespace advcorrect::cuts
