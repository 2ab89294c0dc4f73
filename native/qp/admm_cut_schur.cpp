// Cut-QP back end of the ADMM: P = D positive diagonal, rows reached only through a
// RowOperator (the cut pool), n up to 10⁶, m up to a few thousand.
//
// Scaling: variables x = d ⊙ x̄ with d = D^{-1/2} (so P̄ = c·I), constraint rows scaled to
// unit norm in that metric (Eᵢ = 1/√Gᵢᵢ, G = A D⁻¹ Aᵀ), variable bounds kept as identity
// rows of the scaled problem, cost scaling c = 1/max(1, ‖q̄‖∞) as in OSQP.
//
// Linear system: with H = (c+σ)I + diag(ρ_B) (diagonal: bound rows only add to it), the KKT
// system reduces by Woodbury to the m×m system  (diag(1/ρ_A) + Ā H⁻¹ Āᵀ) ν_A = Ā H⁻¹ r'x − r_A,
// factorised by a dense Cholesky. Without bounds H is a multiple of I and Ā H⁻¹ Āᵀ = E G E / h
// comes from the Gram matrix the cut pool keeps; with bounds it is recomputed through
// RowOperator::weightedGram on ρ updates.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "qp/admm.h"

namespace advcorrect::qp {
namespace {

using Vec = Eigen::VectorXd;
using Mat = Eigen::MatrixXd;

class CutSchurBackend final : public AdmmBackend {
 public:
  CutSchurBackend(const CutQpProblem& p, int scaling_iterations) : p_(p) {
    n = p.n;
    m_rows = p.m;
    has_bounds_ = p.var_lower != nullptr || p.var_upper != nullptr;
    if (has_bounds_)
      for (int j = 0; j < n; ++j) bound_index.push_back(j);
    rows = m_rows + (has_bounds_ ? n : 0);
    const bool scale = scaling_iterations > 0;
    d_ = Vec::Ones(n);
    Vec dinv_sq(n);  // D⁻¹
    for (int j = 0; j < n; ++j) {
      const double dj = p.diagonal ? p.diagonal[j] : 1.0;
      dinv_sq[j] = 1.0 / dj;
      if (scale) d_[j] = 1.0 / std::sqrt(dj);
    }
    // G = A D⁻¹ Aᵀ (borrowed when the caller keeps it).
    if (p.gram && p.gram_stride >= m_rows) {
      gram_.emplace(p.Gram());
    } else {
      if (m_rows > 0) p.rows->weightedGram(dinv_sq.data(), own_gram_);
      else own_gram_.resize(0, 0);
      gram_.emplace(own_gram_.data(), m_rows, m_rows, Eigen::OuterStride<>(std::max<Eigen::Index>(1, m_rows)));
    }
    // Scaled Gram Ā Āᵀ without bounds = E (A diag(d²) Aᵀ) E; with scaling d² = D⁻¹.
    e_a_ = Vec::Ones(m_rows);
    if (scale)
      for (int i = 0; i < m_rows; ++i) {
        const double gii = (*gram_)(i, i);
        e_a_[i] = gii > 1e-300 ? 1.0 / std::sqrt(gii) : 1.0;
      }
    E.resize(rows);
    E.head(m_rows) = e_a_;
    if (has_bounds_) E.tail(n) = d_.cwiseInverse();
    D = d_;
    // q = −D w₀ → q̄ = c d ⊙ q; P̄ = c d D d.
    Vec qbar(n);
    p_bar_diag_.resize(n);
    for (int j = 0; j < n; ++j) {
      const double dj = p.diagonal ? p.diagonal[j] : 1.0;
      qbar[j] = -d_[j] * dj * p.w0[j];
      p_bar_diag_[j] = d_[j] * dj * d_[j];
    }
    c = 1.0;
    if (scale) {
      const double mean_p = n > 0 ? p_bar_diag_.mean() : 1.0;
      const double qn = n > 0 ? qbar.lpNorm<Eigen::Infinity>() : 0.0;
      double norm = std::max(mean_p, qn);
      if (!(norm >= 1e-4)) norm = 1.0;
      c = 1.0 / std::min(norm, 1e4);
    }
    p_bar_diag_ *= c;
    uniform_p_ = gram_is_d_metric_all();
    q = c * qbar;
    r = 0;
    for (int j = 0; j < n; ++j) {
      const double dj = p.diagonal ? p.diagonal[j] : 1.0;
      r += 0.5 * dj * p.w0[j] * p.w0[j];
    }
    l.resize(rows);
    u.resize(rows);
    for (int i = 0; i < m_rows; ++i) {
      l[i] = p.row_lower[i] * e_a_[i];
      u[i] = p.row_upper[i] * e_a_[i];
    }
    for (int j = 0; has_bounds_ && j < n; ++j) {
      l[m_rows + j] = (p.var_lower ? p.var_lower[j] : -INFINITY) / d_[j];
      u[m_rows + j] = (p.var_upper ? p.var_upper[j] : INFINITY) / d_[j];
    }
    tmp_n_.resize(n);
    tmp_m_.resize(m_rows);
  }

  void MultiplyP(const Vec& x, Vec& out) const override { out = p_bar_diag_.cwiseProduct(x); }

  void MultiplyA(const Vec& x, Vec& out) const override {
    out.resize(rows);
    if (m_rows > 0) {
      Vec dx = d_.cwiseProduct(x);
      Vec ax(m_rows);
      p_.rows->multiply(dx.data(), ax.data());
      out.head(m_rows) = ax.cwiseProduct(e_a_);
    }
    if (has_bounds_) out.tail(n) = x;
  }

  void MultiplyAt(const Vec& y, Vec& out) const override {
    out = Vec::Zero(n);
    if (m_rows > 0) {
      Vec ey = y.head(m_rows).cwiseProduct(e_a_);
      p_.rows->multiplyTransposeAdd(ey.data(), 1.0, out.data());
      out = out.cwiseProduct(d_);
    }
    if (has_bounds_) out += y.tail(n);
  }

  FactorResult Factor(double sigma, const Vec& rho) override {
    h_ = p_bar_diag_.array() + sigma;
    rho_b_ = Vec::Zero(n);
    if (has_bounds_) {
      rho_b_ = rho.tail(n);
      h_ += rho_b_;
    }
    if ((h_.array() <= 0).any()) return FactorResult::kNonConvex;
    return FactorSchur(rho.head(m_rows).cwiseInverse(), factor_);
  }

  void Solve(const Vec& rx, const Vec& rz, Vec& x, Vec& nu) override {
    Vec rxp = rx;
    if (has_bounds_) rxp += rho_b_.cwiseProduct(rz.tail(n));
    SolveSchur(factor_, rxp, rz.head(m_rows), x, tmp_m_);
    nu.resize(rows);
    nu.head(m_rows) = tmp_m_;
    if (has_bounds_) nu.tail(n) = rho_b_.cwiseProduct(x - rz.tail(n));
  }

  bool TracksAx() const override { return !has_bounds_ && m_rows > 0 && uniform_p_; }

  void SolveTracked(double sigma, const Vec& x, const Vec& ax, const Vec& rz, Vec& xt, Vec& axt, Vec& nu) override {
    if (aq_.size() != m_rows) {  // Ā q̄ and E G E, once
      Vec full;
      MultiplyA(q, full);
      aq_ = full.head(m_rows);
      gtilde_ = e_a_.asDiagonal() * (*gram_) * e_a_.asDiagonal();
    }
    const double h = h_[0];
    Vec a_rx = sigma * ax - aq_;
    nu = factor_.solve(a_rx / h - rz);
    tmp_n_.setZero();
    Vec ey = nu.cwiseProduct(e_a_);
    p_.rows->multiplyTransposeAdd(ey.data(), 1.0, tmp_n_.data());
    xt = (sigma * x - q - d_.cwiseProduct(tmp_n_)) / h;
    axt.noalias() = gtilde_ * nu;
    axt = (a_rx - axt) / h;
  }

  FactorResult FactorPolish(const std::vector<int>& active, double delta) override {
    polish_rows_.clear();
    polish_bounds_.clear();
    for (int i : active) {
      if (i < m_rows) polish_rows_.push_back(i);
      else polish_bounds_.push_back(i - m_rows);
    }
    delta_ = delta;
    h_saved_ = h_;
    rho_b_saved_ = rho_b_;
    h_ = p_bar_diag_.array() + delta;
    rho_b_ = Vec::Zero(n);
    for (int j : polish_bounds_) rho_b_[j] = 1.0 / delta;
    h_ += rho_b_;
    // Schur system on the active general rows only.
    const int s = static_cast<int>(polish_rows_.size());
    Mat full;
    const Mat* g = ScaledGram(full);
    Mat sub(s, s);
    for (int a = 0; a < s; ++a)
      for (int b = 0; b < s; ++b) sub(a, b) = (*g)(polish_rows_[a], polish_rows_[b]);
    sub.diagonal().array() += delta;
    polish_factor_.compute(sub);
    const bool ok = polish_factor_.info() == Eigen::Success;
    polish_h_ = h_;
    polish_rho_b_ = rho_b_;
    h_ = h_saved_;
    rho_b_ = rho_b_saved_;
    return ok ? FactorResult::kOk : FactorResult::kFailed;
  }

  void SolvePolish(const Vec& rx, const Vec& rs, Vec& x, Vec& ys) override {
    const int s = static_cast<int>(polish_rows_.size());
    const int sb = static_cast<int>(polish_bounds_.size());
    // Right-hand side: bound rows fold into rx (ρ_B = 1/δ on active bounds).
    Vec rxp = rx;
    for (int k = 0; k < sb; ++k) rxp[polish_bounds_[k]] += rs[s + k] / delta_;
    // x = H⁻¹(rxp − Ā_Sᵀ ν), (Ā_S H⁻¹ Ā_Sᵀ + δI) ν = Ā_S H⁻¹ rxp − rs_S.
    Vec hx = rxp.cwiseQuotient(polish_h_);
    Vec ahx = Vec::Zero(rows);
    MultiplyA(hx, ahx);
    Vec rhs(s);
    for (int a = 0; a < s; ++a) rhs[a] = ahx[polish_rows_[a]] - rs[a];
    Vec nu = polish_factor_.solve(rhs);
    Vec y_full = Vec::Zero(rows);
    for (int a = 0; a < s; ++a) y_full[polish_rows_[a]] = nu[a];
    Vec aty(n);
    if (has_bounds_) y_full.tail(n).setZero();
    MultiplyAt(y_full, aty);
    x = (rxp - aty).cwiseQuotient(polish_h_);
    ys.resize(s + sb);
    ys.head(s) = nu;
    for (int k = 0; k < sb; ++k) ys[s + k] = (x[polish_bounds_[k]] - rs[s + k]) / delta_;
  }

  bool HessianLooksConvex(std::string* why) const override {
    for (int j = 0; j < n; ++j)
      if (!(p_bar_diag_[j] > 0)) {
        if (why) *why = "D must be positive";
        return false;
      }
    return true;
  }

 private:
  // Ā H⁻¹ Āᵀ for the general rows (m×m), with the current h_.
  const Mat* ScaledGram(Mat& storage) {
    const double h0 = h_.size() ? h_[0] : 1.0;
    const bool scalar_h = !has_bounds_ && (h_.array() == h0).all();
    if (scalar_h && gram_is_d_metric()) {
      storage = e_a_.asDiagonal() * (*gram_) * e_a_.asDiagonal();
      storage /= h0;
      return &storage;
    }
    Vec w(n);
    for (int j = 0; j < n; ++j) w[j] = d_[j] * d_[j] / h_[j];
    if (m_rows > 0) p_.rows->weightedGram(w.data(), storage);
    else storage.resize(0, 0);
    storage = e_a_.asDiagonal() * storage * e_a_.asDiagonal();
    return &storage;
  }
  // True when d² = D⁻¹, i.e. G = A diag(d²) Aᵀ (scaling on).
  bool gram_is_d_metric() const {
    for (int j = 0; j < std::min(n, 4); ++j) {
      const double dj = p_.diagonal ? p_.diagonal[j] : 1.0;
      if (std::abs(d_[j] * d_[j] * dj - 1.0) > 1e-12) return false;
    }
    return true;
  }

  // d² D = 1 for every variable (P̄ = c·I, G = A diag(d²) Aᵀ).
  bool gram_is_d_metric_all() const {
    for (int j = 0; j < n; ++j) {
      const double dj = p_.diagonal ? p_.diagonal[j] : 1.0;
      if (std::abs(d_[j] * d_[j] * dj - 1.0) > 1e-12) return false;
    }
    return true;
  }

  FactorResult FactorSchur(const Vec& inv_rho, Eigen::LLT<Mat>& llt) {
    if (m_rows == 0) return FactorResult::kOk;
    Mat s;
    ScaledGram(s);
    s.diagonal() += inv_rho;
    llt.compute(s);
    return llt.info() == Eigen::Success ? FactorResult::kOk : FactorResult::kFailed;
  }

  void SolveSchur(const Eigen::LLT<Mat>& llt, const Vec& rxp, const Vec& rz_a, Vec& x, Vec& nu_a) {
    Vec hx = rxp.cwiseQuotient(h_);
    if (m_rows == 0) {
      x = hx;
      nu_a.resize(0);
      return;
    }
    Vec dx = d_.cwiseProduct(hx);
    p_.rows->multiply(dx.data(), tmp_m_.data());
    Vec rhs = tmp_m_.cwiseProduct(e_a_) - rz_a;
    nu_a = llt.solve(rhs);
    Vec ey = nu_a.cwiseProduct(e_a_);
    tmp_n_.setZero();
    p_.rows->multiplyTransposeAdd(ey.data(), 1.0, tmp_n_.data());
    x = hx - d_.cwiseProduct(tmp_n_).cwiseQuotient(h_);
  }

  const CutQpProblem& p_;
  bool has_bounds_ = false;
  bool uniform_p_ = false;
  Vec aq_;
  Mat gtilde_;
  Vec d_, e_a_, p_bar_diag_, h_, rho_b_, h_saved_, rho_b_saved_, polish_h_, polish_rho_b_;
  std::optional<GramView> gram_;
  Mat own_gram_;
  Eigen::LLT<Mat> factor_, polish_factor_;
  std::vector<int> polish_rows_, polish_bounds_;
  double delta_ = 1e-6;
  Vec tmp_n_, tmp_m_;
};

}  // namespace

CutQpResult SolveCutQpAdmm(const CutQpProblem& problem, const AdmmSettings& settings,
                           const CutQpControl& control, AdmmResult* detail) {
  if (problem.n <= 0) throw std::invalid_argument("the cut QP needs n > 0 variables");
  if (problem.m > 0 && problem.rows == nullptr) throw std::invalid_argument("the cut QP has rows but no row operator");
  if (problem.w0 == nullptr) throw std::invalid_argument("the cut QP needs w0");
  const auto start = std::chrono::steady_clock::now();
  const int n = problem.n, m = problem.m;
  CutSchurBackend backend(problem, settings.scaling);
  AdmmResult result;
  const Vec* warm_x = settings.warm_x.size() == n ? &settings.warm_x : nullptr;
  Vec warm_y_full;
  const Vec* warm_y = nullptr;
  if (settings.warm_y.size() == m) {
    warm_y_full = Vec::Zero(backend.rows);
    warm_y_full.head(m) = settings.warm_y;
    if (backend.rows > m && settings.warm_z.size() == n) warm_y_full.tail(n) = settings.warm_z;
    warm_y = &warm_y_full;
  }
  RunAdmm(backend, settings, control, warm_x, warm_y, result);

  CutQpResult out;
  out.status = result.status;
  out.x = result.x;
  out.y = result.y.head(m);
  out.z = backend.rows > m ? Vec(result.y.tail(n)) : Vec::Zero(n);
  out.iterations = result.iterations;
  if (result.status == AdmmStatus::kPrimalInfeasible && result.certificate_y.size() == backend.rows) {
    out.certificate_y = result.certificate_y.head(m);
    out.certificate_z = backend.rows > m ? Vec(result.certificate_y.tail(n)) : Vec::Zero(n);
  }
  out.residuals = ComputeResiduals(problem, out.x, out.y, out.z, &out.objective);
  for (int i = 0; i < m; ++i) out.active_rows += out.y[i] != 0;
  for (int j = 0; j < out.z.size(); ++j) out.active_bounds += out.z[j] != 0;
  out.solve_time_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (detail) {
    result.y = out.y;
    result.z = out.z;
    result.primal_residual = out.residuals.primal;
    result.dual_residual = out.residuals.dual;
    result.gap = out.residuals.gap;
    result.objective = out.objective;
    result.solve_time_ms = out.solve_time_ms;
    *detail = std::move(result);
  }
  return out;
}

}  // namespace advcorrect::qp
