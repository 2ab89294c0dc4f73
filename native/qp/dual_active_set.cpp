#include "qp/dual_active_set.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <vector>
#include <cstdio>
#include <cstdlib>

namespace advcorrect::qp {

namespace {

using Clock = std::chrono::steady_clock;

// δ = G_pp − ‖l‖² below this fraction of G_pp means the constraint depends linearly on the
// working set (in the D⁻¹ metric).
constexpr double kDependentTol = 1e-13;
// Below this relative δ a constraint that no multiplier can make room for is tested for a
// Farkas certificate before the step (the certificate is verified, so a loose value is safe).
constexpr double kNearlyDependentTol = 1e-8;
// How often the iterate is recomputed from scratch before giving up on drift.
constexpr int kMaxRefreshes = 4;

class DualActiveSet {
 public:
  DualActiveSet(const CutQpProblem& problem, const CutQpSettings& settings, const CutQpControl& control)
      : p_(problem), settings_(settings), control_(control), n_(problem.n), m_(problem.m) {
    if (!p_.gram || p_.gram_stride < m_) {
      throw std::invalid_argument("the dual active-set solver needs the Gram matrix A D⁻¹ Aᵀ");
    }
    has_bounds_ = p_.var_lower != nullptr || p_.var_upper != nullptr;
    a_w0_.resize(m_);
    if (p_.a_w0) {
      a_w0_ = Eigen::Map<const Eigen::VectorXd>(p_.a_w0, m_);
    } else if (m_ > 0) {
      p_.rows->multiply(p_.w0, a_w0_.data());
    }
    y_.setZero(m_ + (has_bounds_ ? n_ : 0));
    in_set_.assign(static_cast<size_t>(y_.size()), 0);
    skipped_.assign(static_cast<size_t>(y_.size()), 0);
    s_ = a_w0_;
    if (has_bounds_) {
      x_ = Eigen::Map<const Eigen::VectorXd>(p_.w0, n_);
    }
    started_ = Clock::now();
    last_progress_ = started_;
    debug_ = std::getenv("ADVCORRECT_DEBUG_DUAL") != nullptr;
  }

  CutQpResult Solve(const DualWorkingSet* warm, DualWorkingSet* final_set) {
    CutQpResult result;
    if (warm && settings_.warm_start) WarmStart(*warm);
    CutQpStatus status = Iterate(result);
    Finish(status, result, final_set);
    // The activities were kept through G. When the residual check on A x itself finds a
    // violation that rounding left, iterate again from exact activities (a few rounds at most;
    // free in the usual case, where the first check passes).
    for (int round = 0; round < 3 && status == CutQpStatus::kSolved &&
                        result.status == CutQpStatus::kSolvedInaccurate; ++round) {
      exact_refresh_ = true;
      Refresh();
      std::fill(skipped_.begin(), skipped_.end(), 0);
      status = Iterate(result);
      Finish(status, result, final_set);
    }
    return result;
  }

 private:
  // ---- problem access ----
  double Diag(int j) const { return p_.diagonal ? p_.diagonal[j] : 1.0; }
  double VarLower(int j) const { return p_.var_lower ? p_.var_lower[j] : -kInfinity; }
  double VarUpper(int j) const { return p_.var_upper ? p_.var_upper[j] : kInfinity; }
  double Lower(int c) const { return c < m_ ? p_.row_lower[c] : VarLower(c - m_); }
  double Upper(int c) const { return c < m_ ? p_.row_upper[c] : VarUpper(c - m_); }
  bool IsEquality(int c) const { return Lower(c) == Upper(c); }
  double BoundOf(int c, int sign) const { return sign > 0 ? Upper(c) : Lower(c); }
  // Current value of constraint c: aᵢᵀw for rows, w_j for bounds.
  double Value(int c) const { return c < m_ ? s_[c] : VariableValue(c - m_); }
  // x_j: from x_ when it is current, else from column j of A and the multipliers.
  double VariableValue(int j) const {
    if (!x_stale_) return x_[j];
    const double aty = m_ > 0 ? p_.rows->columnDot(j, y_.data()) : 0.0;
    return p_.w0[j] - (aty + y_[m_ + j]) / Diag(j);
  }
  GramView G() const { return p_.Gram(); }

  // Entry of the Gram matrix of all constraints C = [A; I] in the D⁻¹ metric.
  double GramEntry(int a, int b) const {
    if (a < m_ && b < m_) return G()(a, b);
    if (a >= m_ && b >= m_) return a == b ? 1.0 / Diag(a - m_) : 0.0;
    const int row = a < m_ ? a : b;
    const int var = (a < m_ ? b : a) - m_;
    return RowEntry(row, var) / Diag(var);
  }
  double RowEntry(int row, int var) const { return p_.rows->entry(row, var); }
  // s += scale · A_{:,var}
  void AddColumn(int var, double scale, Eigen::VectorXd& s) const {
    if (m_ > 0) p_.rows->addColumn(var, scale, s.data());
  }

  double Tolerance(int c, int sign) const {
    return settings_.tolerance * std::max(1.0, std::abs(BoundOf(c, sign)));
  }

  // Relative size of δ below which a constraint counts as dependent on W: the rounding error
  // of δ = G_pp − ‖l‖² grows with the condition of G_WW, estimated from L's diagonal.
  double DependentTol() const {
    const int k = static_cast<int>(set_.size());
    if (k == 0) return kDependentTol;
    const Eigen::VectorXd diag = L_.topLeftCorner(k, k).diagonal();
    const double ratio = diag.maxCoeff() / diag.minCoeff();
    return std::max(kDependentTol, 1e-16 * ratio * ratio);
  }

  // ---- Cholesky factor of the working-set Gram block ----
  void EnsureCapacity(int k) {
    if (L_.rows() >= k) return;
    const Eigen::Index cap = std::max<Eigen::Index>(16, std::max<Eigen::Index>(k, 2 * L_.rows()));
    L_.conservativeResize(cap, cap);
  }

  // l = L⁻¹ G_{W,c}; returns δ = G_cc − ‖l‖².
  double Project(int c, Eigen::VectorXd& l) const {
    const int k = static_cast<int>(set_.size());
    l.resize(k);
    for (int i = 0; i < k; ++i) l[i] = GramEntry(set_[static_cast<size_t>(i)], c);
    if (k > 0) L_.topLeftCorner(k, k).triangularView<Eigen::Lower>().solveInPlace(l);
    return GramEntry(c, c) - (k > 0 ? l.squaredNorm() : 0.0);
  }

  void Append(int c, int sign, const Eigen::VectorXd& l, double delta) {
    const int k = static_cast<int>(set_.size());
    EnsureCapacity(k + 1);
    if (k > 0) L_.block(k, 0, 1, k) = l.transpose();
    L_(k, k) = std::sqrt(delta);
    set_.push_back(c);
    sign_.push_back(sign);
    in_set_[static_cast<size_t>(c)] = 1;
  }

  // Removes working-set member at position q, updating the factor by a rank-one update.
  void RemoveAt(int q) {
    const int k = static_cast<int>(set_.size());
    in_set_[static_cast<size_t>(set_[static_cast<size_t>(q)])] = 0;
    const int tail = k - q - 1;
    Eigen::VectorXd v = L_.block(q + 1, q, tail, 1);
    // Shift rows below q up and columns right of q left.
    for (int i = q + 1; i < k; ++i) {
      for (int j = 0; j < q; ++j) L_(i - 1, j) = L_(i, j);
      for (int j = q + 1; j <= i; ++j) L_(i - 1, j - 1) = L_(i, j);
    }
    // L33' L33'ᵀ = L33 L33ᵀ + v vᵀ.
    for (int i = 0; i < tail; ++i) {
      const int ii = q + i;
      const double lii = L_(ii, ii);
      const double r = std::hypot(lii, v[i]);
      const double cos = r / lii;
      const double sin = v[i] / lii;
      L_(ii, ii) = r;
      for (int j = i + 1; j < tail; ++j) {
        const int jj = q + j;
        L_(jj, ii) = (L_(jj, ii) + sin * v[j]) / cos;
        v[j] = cos * v[j] - sin * L_(jj, ii);
      }
    }
    set_.erase(set_.begin() + q);
    sign_.erase(sign_.begin() + q);
  }

  // Solves G_WW x = rhs with the factor.
  void SolveWorking(Eigen::VectorXd& x) const {
    const int k = static_cast<int>(set_.size());
    if (k == 0) return;
    L_.topLeftCorner(k, k).triangularView<Eigen::Lower>().solveInPlace(x);
    L_.topLeftCorner(k, k).transpose().triangularView<Eigen::Upper>().solveInPlace(x);
  }

  // ---- iterate maintenance ----

  // Applies multiplier changes dy (pairs of constraint, change) to y, s and x.
  void ApplyStep(const std::vector<int>& cons, const Eigen::VectorXd& dy) {
    const int k = static_cast<int>(cons.size());
    // Rows: s −= G_{:,rows} dy_rows; bounds: s −= A_{:,j} dz_j / d_j.
    Eigen::VectorXd dy_rows;
    std::vector<int> row_idx;
    row_idx.reserve(static_cast<size_t>(k));
    std::vector<double> row_dy;
    for (int t = 0; t < k; ++t) {
      const int c = cons[static_cast<size_t>(t)];
      y_[c] += dy[t];
      if (dy[t] == 0) continue;
      if (c < m_) {
        row_idx.push_back(c);
        row_dy.push_back(dy[t]);
      } else {
        const int j = c - m_;
        AddColumn(j, -dy[t] / Diag(j), s_);
        if (!x_stale_) x_[j] -= dy[t] / Diag(j);
      }
    }
    if (!row_idx.empty()) {
      for (size_t t = 0; t < row_idx.size(); ++t) s_.noalias() -= row_dy[t] * G().col(row_idx[t]);
      // Updating x would cost a pass over every working-set row per step; it is recomputed
      // when the bounds are next scanned instead.
      if (has_bounds_) x_stale_ = true;
    }
  }

  // x = w₀ − D⁻¹(Aᵀy + z).
  Eigen::VectorXd PrimalFromMultipliers() const {
    Eigen::VectorXd acc = Eigen::VectorXd::Zero(n_);
    if (m_ > 0) p_.rows->multiplyTransposeAdd(y_.data(), 1.0, acc.data());
    Eigen::VectorXd x(n_);
    for (int j = 0; j < n_; ++j) {
      const double z = has_bounds_ ? y_[m_ + j] : 0.0;
      x[j] = p_.w0[j] - (acc[j] + z) / Diag(j);
    }
    return x;
  }

  // Recomputes s (and x) exactly from the multipliers.
  // Recomputes s = A w₀ − G y − A D⁻¹ z (and x) from the multipliers, removing the drift of
  // the incremental updates. Costs O(m²) plus a pass over the active rows when bounded.
  void Refresh() {
    if (exact_refresh_) {
      // s = A x with x from the multipliers: a pass over A, free of G's cancellation.
      Eigen::VectorXd x = PrimalFromMultipliers();
      if (m_ > 0) p_.rows->multiply(x.data(), s_.data());
      if (has_bounds_) {
        x_ = std::move(x);
        x_stale_ = false;
      }
      return;
    }
    if (m_ > 0) s_.noalias() = a_w0_ - G() * y_.head(m_);
    if (has_bounds_) {
      for (int j = 0; j < n_; ++j) {
        if (y_[m_ + j] != 0) AddColumn(j, -y_[m_ + j] / Diag(j), s_);
      }
      x_ = PrimalFromMultipliers();
      x_stale_ = false;
    }
  }

  // Makes the working set tight: y_W = G_WW⁻¹ (C_W w₀ − b_W), dropping members whose multiplier
  // has the wrong sign until none has. Multipliers outside W become 0.
  void Retighten() {
    for (;;) {
      const int k = static_cast<int>(set_.size());
      Eigen::VectorXd x(k);
      for (int i = 0; i < k; ++i) {
        const int c = set_[static_cast<size_t>(i)];
        const double cw0 = c < m_ ? a_w0_[c] : p_.w0[c - m_];
        x[i] = cw0 - BoundOf(c, sign_[static_cast<size_t>(i)]);
      }
      SolveWorking(x);
      int worst = -1;
      double worst_mu = 0;
      for (int i = 0; i < k; ++i) {
        const int c = set_[static_cast<size_t>(i)];
        if (IsEquality(c)) continue;
        const double mu = sign_[static_cast<size_t>(i)] * x[i];
        if (mu < worst_mu) {
          worst_mu = mu;
          worst = i;
        }
      }
      if (worst >= 0) {
        RemoveAt(worst);
        continue;
      }
      y_.setZero();
      for (int i = 0; i < k; ++i) y_[set_[static_cast<size_t>(i)]] = x[i];
      break;
    }
    Refresh();
  }

  void WarmStart(const DualWorkingSet& warm) {
    Eigen::VectorXd l;
    auto try_add = [&](int c, int sign) {
      if (c < 0 || c >= static_cast<int>(in_set_.size()) || in_set_[static_cast<size_t>(c)]) return;
      if (sign != 1 && sign != -1) return;
      if (!std::isfinite(BoundOf(c, sign))) return;
      const double delta = Project(c, l);
      if (delta <= DependentTol() * GramEntry(c, c) || delta <= 0) return;
      Append(c, sign, l, delta);
    };
    for (size_t i = 0; i < warm.rows.size() && i < warm.row_signs.size(); ++i) {
      if (warm.rows[i] < m_) try_add(warm.rows[i], warm.row_signs[i]);
    }
    if (has_bounds_) {
      for (size_t i = 0; i < warm.bounds.size() && i < warm.bound_signs.size(); ++i) {
        if (warm.bounds[i] >= 0 && warm.bounds[i] < n_) try_add(m_ + warm.bounds[i], warm.bound_signs[i]);
      }
    }
    if (!set_.empty()) Retighten();
  }

  // The most violated constraint outside W (scaled by its norm); −1 when none exceeds tolerance.
  // Scanning the bounds needs x current, a pass over the rows with non-zero multipliers after
  // row steps. With costly rows, rows come first (the dual method may add any violated
  // constraint) and the bounds are scanned only when no row is violated.
  int MostViolated(int* sign_out, double* max_violation) {
    if (!has_bounds_) return MostViolatedIn(0, m_, sign_out, max_violation);
    if (p_.costly_rows) {
      const int row = MostViolatedIn(0, m_, sign_out, max_violation);
      if (row >= 0) return row;
    }
    if (x_stale_) {
      x_ = PrimalFromMultipliers();
      x_stale_ = false;
    }
    return MostViolatedIn(0, m_ + n_, sign_out, max_violation);
  }

  int MostViolatedIn(int begin, int end, int* sign_out, double* max_violation) const {
    int best = -1;
    double best_score = 0;
    double max_viol = 0;
    for (int c = begin; c < end; ++c) {
      if (in_set_[static_cast<size_t>(c)] || skipped_[static_cast<size_t>(c)]) continue;
      const double v = Value(c);
      int sign = 0;
      double viol = 0;
      if (v > Upper(c)) {
        sign = 1;
        viol = v - Upper(c);
      } else if (v < Lower(c)) {
        sign = -1;
        viol = Lower(c) - v;
      }
      if (sign == 0) continue;
      max_viol = std::max(max_viol, viol);
      if (viol <= Tolerance(c, sign)) continue;
      const double norm2 = GramEntry(c, c);
      const double score = norm2 > 0 ? viol / std::sqrt(norm2) : kInfinity;
      if (score > best_score) {
        best_score = score;
        best = c;
        *sign_out = sign;
      }
    }
    *max_violation = max_viol;
    return best;
  }

  bool Stop(int iteration, CutQpStatus* status) {
    if (control_.cancelled()) {
      *status = CutQpStatus::kAborted;
      return true;
    }
    if (iteration >= settings_.max_iterations) {
      *status = CutQpStatus::kIterationLimitReached;
      return true;
    }
    const double elapsed = ElapsedMs();
    if (settings_.time_limit_ms > 0 && elapsed > settings_.time_limit_ms) {
      *status = CutQpStatus::kTimeLimitReached;
      return true;
    }
    return false;
  }

  double ElapsedMs() const {
    return std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
  }

  void Report(int iteration, double violation) {
    if (!control_.on_progress) return;
    const auto now = Clock::now();
    if (std::chrono::duration<double, std::milli>(now - last_progress_).count() < settings_.progress_interval_ms) return;
    last_progress_ = now;
    CutQpProgress progress;
    progress.iteration = iteration;
    progress.primal_residual = violation;
    progress.dual_residual = 0;  // the iterate is dual feasible by construction
    progress.elapsed_ms = ElapsedMs();
    control_.on_progress(progress);
  }

  CutQpStatus Iterate(CutQpResult& result) {
    Eigen::VectorXd l, r, dy;
    std::vector<int> cons;
    int refreshes = 0;
    for (;;) {
      CutQpStatus stop;
      if (Stop(iterations_, &stop)) return stop;
      int sign = 0;
      double max_violation = 0;
      const int p = MostViolated(&sign, &max_violation);
      Report(iterations_, max_violation);
      if (p < 0) {
        // Looks optimal: recompute the iterate exactly and look again.
        if (refreshes >= kMaxRefreshes) return CutQpStatus::kSolvedInaccurate;
        ++refreshes;
        Retighten();
        std::fill(skipped_.begin(), skipped_.end(), 0);
        const int again = MostViolated(&sign, &max_violation);
        if (again < 0) return CutQpStatus::kSolved;
        continue;
      }
      // Add p: its multiplier grows from its current value (0) in direction `sign`.
      for (;;) {
        if (Stop(iterations_, &stop)) return stop;
        ++iterations_;
        const double violation = sign * (Value(p) - BoundOf(p, sign));
        if (violation <= 0) break;  // satisfied by a partial step
        double delta = Project(p, l);
        const int k = static_cast<int>(set_.size());
        r = l;
        if (k > 0) L_.topLeftCorner(k, k).transpose().triangularView<Eigen::Upper>().solveInPlace(r);
        const bool dependent = delta <= DependentTol() * GramEntry(p, p);
        // Largest dual step before a working-set multiplier changes sign. For a dependent p,
        // entries of r at rounding level are noise and must not block.
        const double r_noise = dependent && k > 0 ? 1e-9 * std::max(1.0, r.lpNorm<Eigen::Infinity>()) : 0.0;
        double t_dual = kInfinity;
        int blocking = -1;
        for (int i = 0; i < k; ++i) {
          const int c = set_[static_cast<size_t>(i)];
          if (IsEquality(c)) continue;
          const double dmu = -sign_[static_cast<size_t>(i)] * sign * r[i];
          if (dmu >= -r_noise) continue;
          const double mu = sign_[static_cast<size_t>(i)] * y_[c];
          const double t = std::max(0.0, mu) / -dmu;
          if (t < t_dual) {
            t_dual = t;
            blocking = i;
          }
        }
        if (dependent && violation <= 100 * Tolerance(p, sign) * (1 + r.lpNorm<1>())) {
          // p is (numerically) implied by W up to rounding: leave it out of this solve.
          skipped_[static_cast<size_t>(p)] = 1;
          break;
        }
        const double t_full = dependent ? kInfinity : violation / delta;
        if (!dependent && blocking < 0 && delta <= kNearlyDependentTol * GramEntry(p, p)) {
          // p is nearly dependent on W and nothing can leave: the full step would need a huge
          // multiplier. Rounding may have kept δ above the dependence test on an infeasible
          // problem (x ≥ 0, Σx ≤ −1 with n = 1000 gives δ/G_pp ≈ 7e-13); when the ray proves
          // infeasibility, report it instead of stepping.
          CutQpResult ray;
          BuildCertificate(p, sign, r, 0.0, ray);
          if (CertificateHolds(ray)) {
            result.certificate_y = std::move(ray.certificate_y);
            result.certificate_z = std::move(ray.certificate_z);
            return CutQpStatus::kPrimalInfeasible;
          }
        }
        if (dependent && blocking < 0) {
          // No multiplier can leave and p cannot be reached: infeasible. The direction
          // (Δy_W = −sign·r, Δy_p = sign) is a Farkas ray.
          if (debug_) {
            std::fprintf(stderr, "infeasible: p=%d sign=%d viol=%g delta=%g Gpp=%g |W|=%d\n", p, sign, violation, delta, GramEntry(p, p), k);
            for (int i = 0; i < k; ++i) if (std::abs(r[i]) > 1e-6) std::fprintf(stderr, "  W[%d]=%d sign=%d r=%g y=%g eq=%d lo=%g up=%g\n", i, set_[i], sign_[i], r[i], y_[set_[i]], IsEquality(set_[i]), Lower(set_[i]), Upper(set_[i]));
            std::fprintf(stderr, "  p lo=%g up=%g value=%g\n", Lower(p), Upper(p), Value(p));
          }
          CutQpResult ray;
          BuildCertificate(p, sign, r, r_noise, ray);
          if (CertificateHolds(ray)) {
            result.certificate_y = std::move(ray.certificate_y);
            result.certificate_z = std::move(ray.certificate_z);
            return CutQpStatus::kPrimalInfeasible;
          }
          // The ray does not prove infeasibility (rounding on a badly scaled problem): treat p
          // as implied, as above; the final residual check reports any violation that remains.
          skipped_[static_cast<size_t>(p)] = 1;
          break;
        }
        const double t = std::min(t_full, t_dual);
        cons.assign(set_.begin(), set_.end());
        cons.push_back(p);
        dy.resize(k + 1);
        for (int i = 0; i < k; ++i) dy[i] = -sign * r[i] * t;
        dy[k] = sign * t;
        ApplyStep(cons, dy);
        if (debug_ && (delta < 1e-6 * GramEntry(p, p) || std::abs(t) > 1e6))
          std::fprintf(stderr, "step p=%d sign=%d viol=%g delta/G=%g t=%g full=%d |W|=%d tol=%g\n", p, sign, violation, delta / GramEntry(p, p), t, t_full <= t_dual, k, DependentTol());
        if (t_full <= t_dual) {
          Append(p, sign, l, delta);
          break;
        }
        const int leaving = set_[static_cast<size_t>(blocking)];
        y_[leaving] = 0.0;
        RemoveAt(blocking);
      }
    }
  }

  // The ray (Δy_W = −sign·r, Δy_p = sign), with rounding-level entries of r dropped and each
  // inequality's entry on its active side (entries of the wrong sign are noise there).
  void BuildCertificate(int p, int sign, const Eigen::VectorXd& r, double r_noise, CutQpResult& result) {
    Eigen::VectorXd ray = Eigen::VectorXd::Zero(y_.size());
    for (size_t i = 0; i < set_.size(); ++i) {
      const double v = -sign * r[static_cast<Eigen::Index>(i)];
      if (std::abs(v) <= r_noise) continue;
      const int c = set_[i];
      if (!IsEquality(c) && v * sign_[i] < 0) continue;
      ray[c] = v;
    }
    ray[p] = sign;
    const double scale = ray.lpNorm<Eigen::Infinity>();
    if (scale > 0) ray /= scale;
    result.certificate_y = ray.head(m_);
    result.certificate_z = has_bounds_ ? Eigen::VectorXd(ray.tail(n_)) : Eigen::VectorXd::Zero(n_);
  }

  // A Farkas ray proves infeasibility when Aᵀy + z ≈ 0 and its support value Σ y·(active bound)
  // is clearly negative; both are measured relative to the ray's largest entry and the row norms.
  bool CertificateHolds(const CutQpResult& ray) const {
    const Eigen::VectorXd& y = ray.certificate_y;
    const Eigen::VectorXd& z = ray.certificate_z;
    Eigen::VectorXd stationarity = z;
    if (m_ > 0) p_.rows->multiplyTransposeAdd(y.data(), 1.0, stationarity.data());
    double max_diag = 1.0;
    if (p_.diagonal) max_diag = Eigen::Map<const Eigen::VectorXd>(p_.diagonal, n_).maxCoeff();
    double scale = 0, row_norm = 1.0, support = 0, support_terms = 0;
    const auto add = [&](double multiplier, double lower, double upper) {
      if (multiplier == 0) return true;
      const double bound = multiplier > 0 ? upper : lower;
      if (!std::isfinite(bound)) return false;
      scale = std::max(scale, std::abs(multiplier));
      support += multiplier * bound;
      support_terms += std::abs(multiplier * bound);
      return true;
    };
    for (int i = 0; i < m_; ++i) {
      if (y[i] == 0) continue;
      if (!add(y[i], p_.row_lower[i], p_.row_upper[i])) return false;
      row_norm = std::max(row_norm, std::sqrt(GramEntry(i, i) * max_diag));
    }
    for (int j = 0; j < z.size(); ++j) {
      if (!add(z[j], VarLower(j), VarUpper(j))) return false;
    }
    if (scale == 0) return false;
    const double residual = stationarity.lpNorm<Eigen::Infinity>() / scale;
    return residual <= 1e-7 * row_norm && support / scale < -1e-9 * (1.0 + support_terms / scale);
  }

  void Finish(CutQpStatus status, CutQpResult& result, DualWorkingSet* final_set) {
    result.status = status;
    result.active_rows = 0;
    result.active_bounds = 0;
    result.iterations = iterations_;
    const Clock::time_point recovery_started = Clock::now();
    result.x = PrimalFromMultipliers();
    result.y = y_.head(m_);
    result.z = has_bounds_ ? Eigen::VectorXd(y_.tail(n_)) : Eigen::VectorXd::Zero(n_);
    result.residuals = ComputeResiduals(p_, result.x, result.y, result.z, &result.objective);
    result.residual_time_ms += std::chrono::duration<double, std::milli>(Clock::now() - recovery_started).count();
    if (debug_) {
      Eigen::VectorXd act(m_);
      if (m_ > 0) p_.rows->multiply(result.x.data(), act.data());
      for (int i = 0; i < m_; ++i) {
        const double v = std::max({0.0, act[i] - Upper(i), Lower(i) - act[i]});
        if (in_set_[i]) { const double b = y_[i] > 0 ? Upper(i) : Lower(i); if (std::abs(act[i]-b) > 1e-10) std::fprintf(stderr, "W row %d off by %g y=%g\n", i, act[i]-b, y_[i]); }
        if (v > 1e-9) std::fprintf(stderr, "viol row %d: %g in=%d skipped=%d s=%g act=%g lo=%g up=%g y=%g\n", i, v, in_set_[i], skipped_[i], s_[i], act[i], Lower(i), Upper(i), y_[i]);
      }
    }
    if (status == CutQpStatus::kSolved &&
        result.residuals.primal > 100 * settings_.tolerance * std::max(1.0, MaxFiniteBound())) {
      result.status = CutQpStatus::kSolvedInaccurate;
    }
    for (size_t i = 0; i < set_.size(); ++i) {
      if (set_[i] < m_) ++result.active_rows;
      else ++result.active_bounds;
    }
    if (final_set) {
      final_set->rows.clear();
      final_set->row_signs.clear();
      final_set->bounds.clear();
      final_set->bound_signs.clear();
      if (status != CutQpStatus::kPrimalInfeasible) {
        for (size_t i = 0; i < set_.size(); ++i) {
          if (set_[i] < m_) {
            final_set->rows.push_back(set_[i]);
            final_set->row_signs.push_back(sign_[i]);
          } else {
            final_set->bounds.push_back(set_[i] - m_);
            final_set->bound_signs.push_back(sign_[i]);
          }
        }
      }
    }
    result.solve_time_ms = ElapsedMs();
  }

  double MaxFiniteBound() const {
    double out = 0;
    for (int i = 0; i < m_; ++i) {
      if (std::isfinite(p_.row_lower[i])) out = std::max(out, std::abs(p_.row_lower[i]));
      if (std::isfinite(p_.row_upper[i])) out = std::max(out, std::abs(p_.row_upper[i]));
    }
    return out;
  }

  const CutQpProblem& p_;
  const CutQpSettings& settings_;
  const CutQpControl& control_;
  int n_, m_;
  bool has_bounds_ = false;
  Eigen::VectorXd a_w0_;
  Eigen::VectorXd y_;  // m row multipliers, then n bound multipliers when bounded
  Eigen::VectorXd s_;  // row activities A x
  Eigen::VectorXd x_;  // primal iterate (only kept with bounds)
  bool x_stale_ = false;  // x_ lags behind row steps (see VariableValue)
  std::vector<char> in_set_;
  std::vector<char> skipped_;  // constraints found implied by W up to rounding
  std::vector<int> set_, sign_;
  Eigen::MatrixXd L_;
  int iterations_ = 0;
  bool debug_ = false;          // ADVCORRECT_DEBUG_DUAL=1: trace degenerate steps on stderr
  bool exact_refresh_ = false;  // refresh activities from A x instead of through G
  Clock::time_point started_, last_progress_;
};

}  // namespace

CutQpResult SolveDualActiveSet(const CutQpProblem& problem, const CutQpSettings& settings,
                               const CutQpControl& control, const DualWorkingSet* warm,
                               DualWorkingSet* final_set) {
  DualActiveSet solver(problem, settings, control);
  return solver.Solve(warm, final_set);
}

}  // namespace advcorrect::qp
