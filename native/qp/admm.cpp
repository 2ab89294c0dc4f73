// The ADMM iteration of OSQP on an equilibrated problem held by an AdmmBackend.
// Notation as in the OSQP paper: iterates (x, z, y) in the scaled space, per-row ρ,
// relaxation α, proximal σ.
#include "qp/admm.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace advcorrect::qp {
namespace {

using Vec = Eigen::VectorXd;
using Clock = std::chrono::steady_clock;

double InfNorm(const Vec& v) { return v.size() ? v.lpNorm<Eigen::Infinity>() : 0.0; }

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Residuals of a scaled iterate, in unscaled terms (for termination) and scaled terms
// (for the ρ update).
struct Residuals {
  double prim = 0, dual = 0;          // unscaled ‖Ax − z‖∞, ‖Px + q + Aᵀy‖∞
  double primal_tolerance = 0, dual_tolerance = 0;  // tolerance + relative_tolerance · norms
  double prim_ratio = 0, dual_ratio = 0;  // scaled residual / scaled norm, for ρ
  double sign_violation = 0;          // unscaled multiplier of the wrong sign (polish only)
  double gap = 0, gap_tolerance = 0;  // unscaled duality gap and its tolerance
};

class Iteration {
 public:
  Iteration(AdmmBackend& backend, const AdmmSettings& settings, const CutQpControl& control)
      : b_(backend), s_(settings), control_(control) {
    ax_.resize(b_.rows);
    px_.resize(b_.n);
    aty_.resize(b_.n);
  }

  void Run(const Vec* warm_x, const Vec* warm_y, AdmmResult& result);

 private:
  void SetRhoVector(double rho) {
    rho_ = rho;
    rho_vec_.resize(b_.rows);
    for (int i = 0; i < b_.rows; ++i) {
      const bool free_row = std::isinf(b_.l[i]) && std::isinf(b_.u[i]);
      if (free_row) rho_vec_[i] = AdmmSettings::kRhoMin;
      else if (b_.u[i] - b_.l[i] < AdmmSettings::kEqualityTolerance)
        rho_vec_[i] = std::min(rho * AdmmSettings::kEqualityRhoFactor, AdmmSettings::kRhoMax);
      else rho_vec_[i] = rho;
    }
  }

  void Project(const Vec& v, Vec& out) const { out = v.cwiseMax(b_.l).cwiseMin(b_.u); }

  Residuals Compute(const Vec& x, const Vec& z, const Vec& y, bool with_sign = false);
  bool Converged(const Residuals& r, double factor = 1.0) const {
    return r.prim <= factor * r.primal_tolerance && r.dual <= factor * r.dual_tolerance &&
           r.sign_violation <= factor * r.dual_tolerance && (!s_.gap_termination || r.gap <= factor * r.gap_tolerance);
  }
  bool PrimalInfeasible(const Vec& dy, AdmmResult& result);
  bool DualInfeasible(const Vec& dx, AdmmResult& result);
  // Active-set guess: 0 inactive, 1 lower, 2 upper.
  void ActiveSet(const Vec& z, const Vec& y, std::vector<char>& set) const;
  // Tries polishing from (x, z, y); on success (better residuals) replaces them.
  bool Polish(Vec& x, Vec& z, Vec& y, Residuals& res);
  bool PolishWith(const std::vector<char>& set, double delta, Vec& xp, Vec& zp, Vec& yfull, Residuals& rp);

  AdmmBackend& b_;
  const AdmmSettings& s_;
  const CutQpControl& control_;
  double rho_ = 0;
  Vec rho_vec_;
  Vec ax_, px_, aty_;  // work
};

Residuals Iteration::Compute(const Vec& x, const Vec& z, const Vec& y, bool with_sign) {
  Residuals r;
  b_.MultiplyA(x, ax_);
  b_.MultiplyP(x, px_);
  b_.MultiplyAt(y, aty_);
  const double inv_c = 1.0 / b_.c;
  double prim = 0, norm_ax = 0, norm_z = 0, prim_s = 0, norm_ax_s = 0, norm_z_s = 0;
  for (int i = 0; i < b_.rows; ++i) {
    const double diff = std::abs(ax_[i] - z[i]);
    prim_s = std::max(prim_s, diff);
    norm_ax_s = std::max(norm_ax_s, std::abs(ax_[i]));
    norm_z_s = std::max(norm_z_s, std::abs(z[i]));
    const double e = 1.0 / b_.E[i];
    prim = std::max(prim, diff * e);
    norm_ax = std::max(norm_ax, std::abs(ax_[i]) * e);
    norm_z = std::max(norm_z, std::abs(z[i]) * e);
  }
  double dual = 0, norm_px = 0, norm_aty = 0, norm_q = 0, dual_s = 0, norm_d_s = 0;
  for (int j = 0; j < b_.n; ++j) {
    const double d = 1.0 / b_.D[j];
    const double res = px_[j] + b_.q[j] + aty_[j];
    dual_s = std::max(dual_s, std::abs(res));
    norm_d_s = std::max({norm_d_s, std::abs(px_[j]), std::abs(aty_[j]), std::abs(b_.q[j])});
    dual = std::max(dual, std::abs(res) * d);
    norm_px = std::max(norm_px, std::abs(px_[j]) * d);
    norm_aty = std::max(norm_aty, std::abs(aty_[j]) * d);
    norm_q = std::max(norm_q, std::abs(b_.q[j]) * d);
  }
  r.prim = prim;
  r.dual = dual * inv_c;
  r.primal_tolerance = s_.tolerance + s_.relative_tolerance * std::max(norm_ax, norm_z);
  r.dual_tolerance = s_.tolerance + s_.relative_tolerance * inv_c * std::max({norm_px, norm_aty, norm_q});
  r.prim_ratio = prim_s / std::max(norm_ax_s, std::max(norm_z_s, 1e-30));
  r.dual_ratio = dual_s / std::max(norm_d_s, 1e-30);
  // Duality gap |xᵀPx + qᵀx + Σ support(y)| (unscaled = scaled / c); an infinite bound on the
  // side a multiplier points to is replaced by the row value.
  double xpx = x.dot(px_), qx = b_.q.dot(x), support = 0;
  for (int i = 0; i < b_.rows; ++i) {
    if (y[i] > 0) support += y[i] * (std::isfinite(b_.u[i]) ? b_.u[i] : ax_[i]);
    else if (y[i] < 0) support += y[i] * (std::isfinite(b_.l[i]) ? b_.l[i] : ax_[i]);
  }
  r.gap = std::abs(xpx + qx + support) * inv_c;
  r.gap_tolerance = s_.tolerance + s_.relative_tolerance * inv_c * std::max({std::abs(xpx), std::abs(qx), std::abs(support)});
  if (with_sign) {
    // y must lie in the normal cone of [l, u] at Ax: y ≤ 0 unless at the upper bound,
    // y ≥ 0 unless at the lower bound. Measured on the unscaled multipliers.
    double viol = 0;
    for (int i = 0; i < b_.rows; ++i) {
      const double yi = y[i] * b_.E[i] * inv_c;
      const double tol = 1e-9 * std::max(1.0, std::abs(z[i]));
      if (yi > 0 && ax_[i] < b_.u[i] - tol * b_.E[i]) viol = std::max(viol, yi);
      if (yi < 0 && ax_[i] > b_.l[i] + tol * b_.E[i]) viol = std::max(viol, -yi);
    }
    r.sign_violation = viol;
  }
  return r;
}

bool Iteration::PrimalInfeasible(const Vec& dy_scaled, AdmmResult& result) {
  // Unscaled δy, projected on the polar of the recession cone of [l, u].
  Vec dy(b_.rows);
  for (int i = 0; i < b_.rows; ++i) {
    double v = dy_scaled[i] * b_.E[i];
    if (std::isinf(b_.u[i]) && v > 0) v = 0;
    if (std::isinf(b_.l[i]) && v < 0) v = 0;
    dy[i] = v;
  }
  const double norm = InfNorm(dy);
  if (!(norm > 1e-30)) return false;
  double support = 0;
  for (int i = 0; i < b_.rows; ++i) {
    if (dy[i] > 0) support += (b_.u[i] / b_.E[i]) * dy[i];
    else if (dy[i] < 0) support += (b_.l[i] / b_.E[i]) * dy[i];
  }
  if (!(support < -s_.primal_infeasibility_tolerance * norm)) return false;
  // Aᵀδy (unscaled) = D⁻¹ Āᵀ (E⁻¹ δy).
  Vec back(b_.rows);
  for (int i = 0; i < b_.rows; ++i) back[i] = dy[i] / b_.E[i];
  b_.MultiplyAt(back, aty_);
  double norm_aty = 0;
  for (int j = 0; j < b_.n; ++j) norm_aty = std::max(norm_aty, std::abs(aty_[j]) / b_.D[j]);
  if (!(norm_aty <= s_.primal_infeasibility_tolerance * norm)) return false;
  Vec cert = dy / norm;
  result.certificate_y = cert;  // split into rows and bounds by the caller
  return true;
}

bool Iteration::DualInfeasible(const Vec& dx_scaled, AdmmResult& result) {
  Vec dx = dx_scaled.cwiseProduct(b_.D);
  const double norm = InfNorm(dx);
  if (!(norm > 1e-30)) return false;
  const double qdx = b_.q.dot(dx_scaled) / b_.c;
  if (!(qdx < -s_.dual_infeasibility_tolerance * norm)) return false;
  b_.MultiplyP(dx_scaled, px_);
  double norm_px = 0;
  for (int j = 0; j < b_.n; ++j) norm_px = std::max(norm_px, std::abs(px_[j]) / b_.D[j]);
  if (!(norm_px / b_.c <= s_.dual_infeasibility_tolerance * norm)) return false;
  b_.MultiplyA(dx_scaled, ax_);
  const double tol = s_.dual_infeasibility_tolerance * norm;
  for (int i = 0; i < b_.rows; ++i) {
    const double v = ax_[i] / b_.E[i];
    if (!std::isinf(b_.u[i]) && v > tol) return false;
    if (!std::isinf(b_.l[i]) && v < -tol) return false;
  }
  result.certificate_x = dx / norm;
  return true;
}

void Iteration::ActiveSet(const Vec& z, const Vec& y, std::vector<char>& set) const {
  set.assign(b_.rows, 0);
  for (int i = 0; i < b_.rows; ++i) {
    if (std::isfinite(b_.u[i]) && b_.u[i] - b_.l[i] <= 1e-14 * std::max(1.0, std::abs(b_.u[i]))) set[i] = 2;  // equality
    else if (z[i] - b_.l[i] < -y[i]) set[i] = 1;
    else if (b_.u[i] - z[i] < y[i]) set[i] = 2;
  }
}

bool Iteration::PolishWith(const std::vector<char>& set, double delta, Vec& xp, Vec& zp, Vec& yfull,
                           Residuals& rp) {
  std::vector<int> active;
  for (int i = 0; i < b_.rows; ++i)
    if (set[i]) active.push_back(i);
  Vec rs(active.size());
  for (size_t k = 0; k < active.size(); ++k) {
    const int i = active[k];
    rs[k] = set[i] == 1 ? b_.l[i] : b_.u[i];
    if (!std::isfinite(rs[k])) return false;
  }
  if (b_.FactorPolish(active, delta) != AdmmBackend::FactorResult::kOk) return false;
  const Vec rx = -b_.q;
  Vec ys;
  b_.SolvePolish(rx, rs, xp, ys);
  yfull = Vec::Zero(b_.rows);
  Vec dx, dys, top(b_.n), bottom(active.size());
  // Iterative refinement against the unperturbed reduced KKT system [P̄, Ā_Sᵀ; Ā_S, 0]:
  // at least polish_refine_iterations steps while the residual keeps falling, at most 4× that.
  double last = INFINITY;
  const double rhs_norm = std::max(InfNorm(rx), InfNorm(rs));
  for (int it = 0; it < 4 * s_.polish_refine_iterations; ++it) {
    for (size_t k = 0; k < active.size(); ++k) yfull[active[k]] = ys[k];
    b_.MultiplyP(xp, px_);
    b_.MultiplyAt(yfull, aty_);
    b_.MultiplyA(xp, ax_);
    top = rx - px_ - aty_;
    for (size_t k = 0; k < active.size(); ++k) bottom[k] = rs[k] - ax_[active[k]];
    const double now = std::max(InfNorm(top), InfNorm(bottom));
    // Stop at round-off level; after polish_refine_iterations steps go on (up to 4×) only while
    // each step at least halves the residual.
    if (!(now > 1e-14 * (1 + rhs_norm))) break;
    if (it >= s_.polish_refine_iterations && now > 0.5 * last) break;
    last = now;
    b_.SolvePolish(top, bottom, dx, dys);
    xp += dx;
    ys += dys;
  }
  yfull.setZero();
  for (size_t k = 0; k < active.size(); ++k) yfull[active[k]] = ys[k];
  if (!xp.allFinite() || !yfull.allFinite()) return false;
  b_.MultiplyA(xp, ax_);
  Project(ax_, zp);
  rp = Compute(xp, zp, yfull, true);
  return true;
}

bool Iteration::Polish(Vec& x, Vec& z, Vec& y, Residuals& res) {
  // Candidate active sets: OSQP's guess, then only the rows with a clearly non-zero
  // multiplier (degenerate vertices make the first over-determined), each with δ and δ/1e3.
  std::vector<char> guess, strict;
  ActiveSet(z, y, guess);
  const double ymax = InfNorm(y);
  strict = guess;
  for (int i = 0; i < b_.rows; ++i) {
    const bool equality = std::isfinite(b_.u[i]) && b_.u[i] - b_.l[i] <= 1e-14 * std::max(1.0, std::abs(b_.u[i]));
    if (!equality && std::abs(y[i]) <= 1e-7 * ymax) strict[i] = 0;
  }
  const double floor = 1e-12;
  bool found = false;
  Residuals best;
  Vec bx, bz, by;
  const std::vector<char>* sets[2] = {&guess, &strict};
  for (int which = 0; which < 2 && !found; ++which) {
    if (which == 1 && strict == guess) break;
    for (double delta : {s_.delta, s_.delta * 1e-3}) {
      Vec xp, zp, yp;
      Residuals rp;
      if (!PolishWith(*sets[which], delta, xp, zp, yp, rp)) continue;
      const bool better = rp.prim <= std::max(res.prim, floor) && rp.dual <= std::max(res.dual, floor) &&
                          rp.sign_violation <= std::max(rp.dual_tolerance, floor);
      if (better && (!found || std::max(rp.prim, rp.dual) < std::max(best.prim, best.dual))) {
        found = true;
        best = rp;
        bx = xp;
        bz = zp;
        by = yp;
      }
      if (found && Converged(best)) break;
    }
  }
  if (!found) return false;
  x = bx;
  z = bz;
  y = by;
  res = best;
  return true;
}

void Iteration::Run(const Vec* warm_x, const Vec* warm_y, AdmmResult& result) {
  const auto start = Clock::now();
  const int n = b_.n, rows = b_.rows;
  result.rho_updates = 0;
  result.polished = false;
  std::string why;
  if (!b_.HessianLooksConvex(&why)) {
    result.status = AdmmStatus::kNonConvex;
    result.message = why;
    result.x = Vec::Zero(n);
    result.certificate_y.resize(0);
    result.y = Vec::Zero(rows);
    return;
  }
  SetRhoVector(std::clamp(s_.rho, AdmmSettings::kRhoMin, AdmmSettings::kRhoMax));
  AdmmBackend::FactorResult fr = b_.Factor(s_.sigma, rho_vec_);
  if (fr != AdmmBackend::FactorResult::kOk) {
    result.status = AdmmStatus::kNonConvex;
    result.message = fr == AdmmBackend::FactorResult::kNonConvex
                         ? "the KKT matrix is not quasi-definite: P is not positive semidefinite"
                         : "the KKT matrix could not be factorised";
    result.x = Vec::Zero(n);
    result.y = Vec::Zero(rows);
    return;
  }

  Vec x = Vec::Zero(n), z = Vec::Zero(rows), y = Vec::Zero(rows);
  if (warm_x && warm_x->size() == n) x = warm_x->cwiseQuotient(b_.D);
  if (warm_y && warm_y->size() == rows) y = warm_y->cwiseQuotient(b_.E) * b_.c;
  if (warm_x && warm_x->size() == n) {
    b_.MultiplyA(x, ax_);
    Project(ax_, z);
  }
  const bool warm = warm_x && warm_x->size() == n && warm_y && warm_y->size() == rows;

  Vec xt(n), nu(rows), zt(rows), rx(n), rz(rows), zrel(rows), x_prev, y_prev, v(rows);
  const bool tracked = b_.TracksAx();
  Vec ax_track, axt;
  if (tracked) b_.MultiplyA(x, ax_track);
  const int check = std::max(1, s_.check_termination);
  int rho_interval = s_.adaptive_rho_interval > 0 ? s_.adaptive_rho_interval : 0;
  int last_rho_update = 0;
  int next_polish = std::max(2 * check, 100);
  std::vector<char> set_prev, set_now;
  if (warm) {
    // From a warm start the active set is likely right already: polish from the first check.
    ActiveSet(z, y, set_prev);
    next_polish = check;
  }
  double last_progress_ms = -1e300;
  Residuals res;
  bool have_res = false;
  AdmmStatus status = AdmmStatus::kIterationLimitReached;
  int k = 0, primal_inf_count = 0, dual_inf_count = 0;
  const double alpha = s_.alpha, sigma = s_.sigma;

  for (k = 1; k <= s_.max_iterations; ++k) {
    if (control_.cancelled()) { status = AdmmStatus::kAborted; --k; break; }
    if (s_.time_limit_ms > 0 && Ms(start) > s_.time_limit_ms) {
      status = AdmmStatus::kTimeLimitReached;
      --k;
      break;
    }
    const bool is_check = (k % check == 0) || k == s_.max_iterations;
    if (is_check) {
      x_prev = x;
      y_prev = y;
    }
    rz = z - y.cwiseQuotient(rho_vec_);
    if (tracked) {
      b_.SolveTracked(sigma, x, ax_track, rz, xt, axt, nu);
      ax_track = alpha * axt + (1 - alpha) * ax_track;
    } else {
      rx = sigma * x - b_.q;
      b_.Solve(rx, rz, xt, nu);
    }
    zt = z + (nu - y).cwiseQuotient(rho_vec_);
    x = alpha * xt + (1 - alpha) * x;
    zrel = alpha * zt + (1 - alpha) * z;
    v = zrel + y.cwiseQuotient(rho_vec_);
    Project(v, z);
    y += rho_vec_.cwiseProduct(zrel - z);
    if (!is_check) continue;

    res = Compute(x, z, y);
    have_res = true;
    if (tracked) ax_track = ax_;  // re-synchronise Āx (Compute multiplied it afresh)
    if (control_.on_progress && Ms(start) - last_progress_ms >= s_.progress_interval_ms) {
      last_progress_ms = Ms(start);
      CutQpProgress p;
      p.iteration = k;
      p.primal_residual = res.prim;
      p.dual_residual = res.dual;
      p.elapsed_ms = last_progress_ms;
      control_.on_progress(p);
    }
    if (!std::isfinite(res.prim) || !std::isfinite(res.dual)) {
      status = AdmmStatus::kSolvedInaccurate;  // replaced below: numerical breakdown
      result.message = "the iteration diverged (non-finite residuals)";
      status = AdmmStatus::kIterationLimitReached;
      break;
    }
    if (Converged(res)) { status = AdmmStatus::kSolved; break; }
    // A certificate must hold at two consecutive checks: large transient steps of the
    // iterates can satisfy the tests once on feasible, bounded problems.
    primal_inf_count = PrimalInfeasible(y - y_prev, result) ? primal_inf_count + 1 : 0;
    if (primal_inf_count >= 2) { status = AdmmStatus::kPrimalInfeasible; break; }
    dual_inf_count = DualInfeasible(x - x_prev, result) ? dual_inf_count + 1 : 0;
    if (dual_inf_count >= 2) { status = AdmmStatus::kDualInfeasible; break; }

    // Early polishing: once the active-set guess stops changing, a polish may finish the
    // solve long before ADMM reaches a tight tolerance.
    if (s_.polish) {
      ActiveSet(z, y, set_now);
      if (k >= next_polish && set_now == set_prev) {
        Vec xp = x, zp = z, yp = y;
        Residuals rp = res;
        if (Polish(xp, zp, yp, rp) && Converged(rp)) {
          x = xp; z = zp; y = yp; res = rp;
          result.polished = true;
          status = AdmmStatus::kSolved;
          break;
        }
        next_polish = k + std::max(next_polish / 2, 4 * check);
      }
      set_prev.swap(set_now);
    }

    if (s_.adaptive_rho) {
      // Automatic interval: every check (deterministic, unlike OSQP's timing-based rule;
      // the adaptiveRhoTolerance factor already keeps refactorisations rare).
      if (rho_interval == 0) rho_interval = check;
      if (k - last_rho_update >= rho_interval) {
        double rho_new = rho_ * std::sqrt(res.prim_ratio / std::max(res.dual_ratio, 1e-30));
        if (!std::isfinite(rho_new)) rho_new = rho_;
        rho_new = std::clamp(rho_new, AdmmSettings::kRhoMin, AdmmSettings::kRhoMax);
        if (rho_new > s_.adaptive_rho_tolerance * rho_ || rho_new < rho_ / s_.adaptive_rho_tolerance) {
          SetRhoVector(rho_new);
          if (b_.Factor(sigma, rho_vec_) != AdmmBackend::FactorResult::kOk) {
            result.status = AdmmStatus::kNonConvex;
            result.message = "refactorisation after a ρ update failed: P is not positive semidefinite";
            status = AdmmStatus::kNonConvex;
            break;
          }
          ++result.rho_updates;
          last_rho_update = k;
        }
      }
    }
  }
  if (k > s_.max_iterations) k = s_.max_iterations;

  if (status == AdmmStatus::kSolved && s_.polish && !result.polished) {
    Vec xp = x, zp = z, yp = y;
    Residuals rp = res;
    if (Polish(xp, zp, yp, rp)) {
      x = xp; z = zp; y = yp; res = rp;
      result.polished = true;
    }
  } else if (status == AdmmStatus::kIterationLimitReached || status == AdmmStatus::kTimeLimitReached) {
    if (!have_res) res = Compute(x, z, y);
    bool solved = false;
    if (s_.polish && status == AdmmStatus::kIterationLimitReached) {
      Vec xp = x, zp = z, yp = y;
      Residuals rp = res;
      if (Polish(xp, zp, yp, rp)) {
        x = xp; z = zp; y = yp; res = rp;
        result.polished = true;
        solved = Converged(rp);
      }
    }
    if (solved) status = AdmmStatus::kSolved;
    else if (status == AdmmStatus::kIterationLimitReached && std::isfinite(res.prim) && Converged(res, 10.0))
      status = AdmmStatus::kSolvedInaccurate;
  }

  result.status = status;
  result.iterations = k;
  result.rho = rho_;
  result.x = x.cwiseProduct(b_.D);
  result.y = y.cwiseProduct(b_.E) / b_.c;
  if (status != AdmmStatus::kPrimalInfeasible) result.certificate_y.resize(0);
  if (status != AdmmStatus::kDualInfeasible) result.certificate_x.resize(0);
}

}  // namespace

void RunAdmm(AdmmBackend& backend, const AdmmSettings& settings, const CutQpControl& control,
             const Eigen::VectorXd* warm_x, const Eigen::VectorXd* warm_y, AdmmResult& result) {
  Iteration iteration(backend, settings, control);
  iteration.Run(warm_x, warm_y, result);
}

}  // namespace advcorrect::qp
