// C++ checks of the ADMM core on random sparse QPs (no Node): residuals computed here,
// independently of the solver, must meet the requested tolerance; infeasible and
// unbounded problems must be detected with valid certificates; non-convex P reported.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "qp/admm.h"

using namespace advcorrect::qp;

static int failures = 0;
#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      ++failures;                                         \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
      std::printf(__VA_ARGS__);                           \
      std::printf("\n");                                  \
    }                                                     \
  } while (0)

static CscMatrix Dense2Csc(const Eigen::MatrixXd& M, bool upper) {
  CscMatrix c;
  c.nrows = M.rows();
  c.ncols = M.cols();
  c.col_ptr.push_back(0);
  for (int j = 0; j < M.cols(); ++j) {
    for (int i = 0; i < M.rows(); ++i)
      if (M(i, j) != 0 && (!upper || i <= j)) {
        c.row_index.push_back(i);
        c.values.push_back(M(i, j));
      }
    c.col_ptr.push_back(c.row_index.size());
  }
  return c;
}

struct Dense {
  Eigen::MatrixXd P, A;
  Eigen::VectorXd q, l, u, lb, ub;
};

static GeneralQp Make(const Dense& d) {
  GeneralQp qp;
  qp.n = d.P.rows();
  qp.m = d.A.rows();
  qp.P = Dense2Csc(d.P, true);
  qp.A = Dense2Csc(d.A, false);
  qp.q.assign(d.q.data(), d.q.data() + qp.n);
  qp.l.assign(d.l.data(), d.l.data() + qp.m);
  qp.u.assign(d.u.data(), d.u.data() + qp.m);
  if (d.lb.size()) qp.lb.assign(d.lb.data(), d.lb.data() + qp.n);
  if (d.ub.size()) qp.ub.assign(d.ub.data(), d.ub.data() + qp.n);
  return qp;
}

static Dense RandomFeasible(std::mt19937& rng, int n, int m, double density, bool bounds) {
  std::normal_distribution<double> g;
  std::uniform_real_distribution<double> U(0, 1);
  Dense d;
  Eigen::MatrixXd M(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) M(i, j) = U(rng) < density ? g(rng) : 0.0;
  d.P = M.transpose() * M + 0.01 * Eigen::MatrixXd::Identity(n, n);
  d.A = Eigen::MatrixXd::Zero(m, n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) d.A(i, j) = U(rng) < density ? g(rng) : 0.0;
  Eigen::VectorXd x0(n);
  for (int j = 0; j < n; ++j) x0[j] = g(rng);
  d.q.resize(n);
  for (int j = 0; j < n; ++j) d.q[j] = 3 * g(rng);
  Eigen::VectorXd ax = d.A * x0;
  d.l.resize(m);
  d.u.resize(m);
  for (int i = 0; i < m; ++i) {
    const double kind = U(rng);
    if (kind < 0.2) d.l[i] = d.u[i] = ax[i];                      // equality
    else if (kind < 0.5) { d.l[i] = ax[i] - U(rng); d.u[i] = ax[i] + U(rng); }  // range
    else if (kind < 0.75) { d.l[i] = -INFINITY; d.u[i] = ax[i] + U(rng); }
    else if (kind < 0.95) { d.l[i] = ax[i] - U(rng); d.u[i] = INFINITY; }
    else { d.l[i] = -INFINITY; d.u[i] = INFINITY; }               // free row
  }
  if (bounds) {
    d.lb.resize(n);
    d.ub.resize(n);
    for (int j = 0; j < n; ++j) {
      d.lb[j] = U(rng) < 0.7 ? x0[j] - U(rng) : -INFINITY;
      d.ub[j] = U(rng) < 0.7 ? x0[j] + U(rng) : INFINITY;
    }
  }
  return d;
}

// Independent residuals of (x, y, z) on the dense data.
static void Residuals(const Dense& d, const AdmmResult& r, double& prim, double& dual) {
  Eigen::VectorXd ax = d.A * r.x;
  prim = 0;
  for (int i = 0; i < ax.size(); ++i) prim = std::max({prim, d.l[i] - ax[i], ax[i] - d.u[i]});
  for (int j = 0; j < r.x.size() && d.lb.size(); ++j) prim = std::max({prim, d.lb[j] - r.x[j], r.x[j] - d.ub[j]});
  Eigen::VectorXd grad = d.P * r.x + d.q + d.A.transpose() * r.y + r.z;
  dual = grad.lpNorm<Eigen::Infinity>();
}

// A dense RowOperator for the cut-form tests.
class DenseRows : public RowOperator {
 public:
  explicit DenseRows(const Eigen::MatrixXd& a) : a_(a) {}
  int rows() const override { return a_.rows(); }
  int cols() const override { return a_.cols(); }
  void multiply(const double* x, double* y) const override {
    Eigen::Map<Eigen::VectorXd>(y, a_.rows()) = a_ * Eigen::Map<const Eigen::VectorXd>(x, a_.cols());
  }
  void multiplyTransposeAdd(const double* y, double scale, double* x) const override {
    Eigen::Map<Eigen::VectorXd>(x, a_.cols()) += scale * a_.transpose() * Eigen::Map<const Eigen::VectorXd>(y, a_.rows());
  }
  void weightedGram(const double* w, Eigen::MatrixXd& g) const override {
    g = a_ * Eigen::Map<const Eigen::VectorXd>(w, a_.cols()).asDiagonal() * a_.transpose();
  }
  double entry(int row, int col) const override { return a_(row, col); }
  double columnDot(int col, const double* y) const override {
    return a_.col(col).dot(Eigen::Map<const Eigen::VectorXd>(y, a_.rows()));
  }
  void addColumn(int col, double scale, double* y) const override {
    Eigen::Map<Eigen::VectorXd>(y, a_.rows()) += scale * a_.col(col);
  }

 private:
  Eigen::MatrixXd a_;
};

// The cut form (P = D diagonal) must agree with the general sparse form of the same QP.
static void TestCutForm(std::mt19937& rng, int n, int m, bool bounds) {
  std::normal_distribution<double> g;
  std::uniform_real_distribution<double> U(0.5, 2.0);
  Eigen::MatrixXd a(m, n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) a(i, j) = g(rng);
  Eigen::VectorXd dg(n), w0(n), lo(m), up(m), vl(n), vu(n);
  for (int j = 0; j < n; ++j) { dg[j] = U(rng); w0[j] = g(rng); vl[j] = -0.3; vu[j] = 0.4; }
  // Feasible by construction: x_f = 0.05 satisfies every row (first row an equality) and bound.
  Eigen::VectorXd aw = a * Eigen::VectorXd::Constant(n, 0.05);
  for (int i = 0; i < m; ++i) { lo[i] = -INFINITY; up[i] = aw[i] + 0.3 * std::abs(g(rng)); }
  lo[0] = up[0] = aw[0];
  DenseRows rowsop(a);
  CutQpProblem cp;
  cp.n = n; cp.m = m; cp.rows = &rowsop; cp.row_lower = lo.data(); cp.row_upper = up.data();
  cp.diagonal = dg.data(); cp.w0 = w0.data();
  if (bounds) { cp.var_lower = vl.data(); cp.var_upper = vu.data(); }
  AdmmSettings st;
  st.tolerance = 1e-7;
  st.relative_tolerance = 0;
  st.max_iterations = 20000;
  CutQpResult cr = SolveCutQpAdmm(cp, st);
  Dense d;
  d.P = dg.asDiagonal();
  d.q = -dg.cwiseProduct(w0);
  d.A = a; d.l = lo; d.u = up;
  if (bounds) { d.lb = vl; d.ub = vu; }
  AdmmResult gr = SolveAdmm(Make(d), st);
  const double r = 0.5 * w0.dot(dg.cwiseProduct(w0));
  CHECK(cr.status == AdmmStatus::kSolved, "cut form n=%d m=%d: %s", n, m, StatusName(cr.status));
  CHECK(cr.residuals.primal <= 1e-7 && cr.residuals.dual <= 1e-7, "cut form residuals %g %g", cr.residuals.primal, cr.residuals.dual);
  CHECK(std::abs(cr.objective - (gr.objective + r)) <= 1e-6 * (1 + std::abs(cr.objective)), "cut vs general objective %.12g vs %.12g",
        cr.objective, gr.objective + r);
  std::printf("cut form n=%d m=%d bounds=%d: %s iter %d prim %.1e dual %.1e obj %.10g (general %.10g)\n", n, m, bounds,
              StatusName(cr.status), cr.iterations, cr.residuals.primal, cr.residuals.dual, cr.objective, gr.objective + r);
}

int main() {
  std::mt19937 rng(12345);
  TestCutForm(rng, 200, 20, false);
  TestCutForm(rng, 200, 20, true);
  TestCutForm(rng, 50, 80, true);
  struct Shape { int n, m; double density; bool bounds; };
  const Shape shapes[] = {{10, 5, 0.5, false}, {30, 60, 0.2, true}, {50, 20, 0.1, true}, {80, 40, 0.05, false}, {5, 30, 0.8, true}};
  for (const Shape& s : shapes) {
    for (double eps : {1e-3, 1e-6, 1e-9}) {
      Dense d = RandomFeasible(rng, s.n, s.m, s.density, s.bounds);
      GeneralQp qp = Make(d);
      AdmmSettings st;
      st.tolerance = eps;
      st.relative_tolerance = 0;
      st.max_iterations = 20000;
      AdmmResult r = SolveAdmm(qp, st);
      double prim, dual;
      Residuals(d, r, prim, dual);
      const double tol = eps * std::max(1.0, d.q.lpNorm<Eigen::Infinity>());
      CHECK(r.status == AdmmStatus::kSolved, "n=%d m=%d eps=%g status %s", s.n, s.m, eps, StatusName(r.status));
      CHECK(prim <= tol && dual <= tol, "n=%d m=%d eps=%g prim %g dual %g", s.n, s.m, eps, prim, dual);
      CHECK(std::abs(prim - r.primal_residual) <= 1e-9 * (1 + prim) + 1e-12 && std::abs(dual - r.dual_residual) <= 1e-8 * (1 + dual),
            "reported residuals differ: %g vs %g, %g vs %g", prim, r.primal_residual, dual, r.dual_residual);
      std::printf("n=%3d m=%3d eps=%g: %s iter %d polished %d rho_updates %d prim %.2e dual %.2e gap %.2e %.1f ms\n", s.n, s.m, eps,
                  StatusName(r.status), r.iterations, r.polished, r.rho_updates, prim, dual, r.gap, r.solve_time_ms);
      // Warm start from the solution: very few iterations.
      AdmmSettings ws = st;
      ws.warm_x = r.x;
      ws.warm_y = r.y;
      ws.warm_z = r.z;
      AdmmResult w = SolveAdmm(qp, ws);
      CHECK(w.status == AdmmStatus::kSolved && w.iterations <= 2 * st.check_termination, "warm start took %d iterations (%s)", w.iterations,
            StatusName(w.status));
    }
  }
  // Primal infeasible: x1 + x2 ≤ 1 and x1 + x2 ≥ 3.
  {
    Dense d;
    d.P = Eigen::MatrixXd::Identity(2, 2);
    d.q = Eigen::VectorXd::Zero(2);
    d.A.resize(2, 2);
    d.A << 1, 1, 1, 1;
    d.l.resize(2);
    d.u.resize(2);
    d.l << -INFINITY, 3;
    d.u << 1, INFINITY;
    AdmmResult r = SolveAdmm(Make(d), AdmmSettings{});
    CHECK(r.status == AdmmStatus::kPrimalInfeasible, "expected primal infeasible, got %s", StatusName(r.status));
    // The certificate must be there (one multiplier per row) and prove infeasibility.
    CHECK(r.certificate_y.size() == 2, "certificate has %d entries, expected 2", static_cast<int>(r.certificate_y.size()));
    if (r.certificate_y.size() == 2) {
      Eigen::VectorXd aty = d.A.transpose() * r.certificate_y;
      double support = 0;
      for (int i = 0; i < 2; ++i) support += r.certificate_y[i] > 0 ? d.u[i] * r.certificate_y[i] : d.l[i] * r.certificate_y[i];
      CHECK(aty.lpNorm<Eigen::Infinity>() < 1e-3 && support < 0, "bad certificate: |A'y| %g support %g", aty.lpNorm<Eigen::Infinity>(), support);
    }
  }
  // Dual infeasible: minimise −x1 with x1 ≥ 0 only (P = 0 in x1).
  {
    Dense d;
    d.P = Eigen::MatrixXd::Zero(2, 2);
    d.P(1, 1) = 1;
    d.q.resize(2);
    d.q << -1, 0;
    d.A.resize(1, 2);
    d.A << 1, 0;
    d.l.resize(1);
    d.u.resize(1);
    d.l << 0;
    d.u << INFINITY;
    AdmmResult r = SolveAdmm(Make(d), AdmmSettings{});
    CHECK(r.status == AdmmStatus::kDualInfeasible, "expected dual infeasible, got %s", StatusName(r.status));
    // The ray must be there (one entry per variable) and be a direction of unbounded descent.
    CHECK(r.certificate_x.size() == 2, "ray has %d entries, expected 2", static_cast<int>(r.certificate_x.size()));
    if (r.certificate_x.size() == 2) CHECK(d.q.dot(r.certificate_x) < 0 && (d.A * r.certificate_x)[0] >= -1e-4, "bad ray");
  }
  // Non-convex: P = diag(1, −1).
  {
    Dense d;
    d.P = Eigen::MatrixXd::Identity(2, 2);
    d.P(1, 1) = -1;
    d.q = Eigen::VectorXd::Zero(2);
    d.A = Eigen::MatrixXd::Identity(2, 2);
    d.l = -Eigen::VectorXd::Ones(2);
    d.u = Eigen::VectorXd::Ones(2);
    AdmmResult r = SolveAdmm(Make(d), AdmmSettings{});
    CHECK(r.status == AdmmStatus::kNonConvex, "expected non_convex, got %s", StatusName(r.status));
    // Indefinite with a positive diagonal: [[1, 2], [2, 1]].
    d.P << 1, 2, 2, 1;
    r = SolveAdmm(Make(d), AdmmSettings{});
    CHECK(r.status == AdmmStatus::kNonConvex, "expected non_convex (off-diagonal), got %s", StatusName(r.status));
  }
  std::printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
