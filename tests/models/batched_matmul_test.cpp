// batched_matmul: torch::matmul's result and gradients (against float64), for the strided operands
// attention hands it, and torch::matmul's own behaviour where oneDNN does not apply.
#include "models/batched_matmul.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/model_test_util.h"

namespace lf {
namespace {

using test::max_rel;

TEST(BatchedMatmul, MatchesFloat64WithGradients) {
  torch::manual_seed(0);
  struct Case {
    int64_t b, m, k, n;
    bool transposed_a, transposed_b;
  };
  for (const Case c : {Case{3, 5, 7, 2, false, false}, Case{4, 64, 32, 64, true, false},
                       Case{2, 9, 16, 33, true, true}, Case{1, 1, 1, 1, false, true}}) {
    SCOPED_TRACE(::testing::Message() << c.b << "x" << c.m << "x" << c.k << "x" << c.n);
    // float64 leaves; the float32 operands are copies in the given layout
    const auto a64 = torch::randn({c.b, c.m, c.k}, torch::kFloat64).requires_grad_();
    const auto b64 = torch::randn({c.b, c.k, c.n}, torch::kFloat64).requires_grad_();
    const auto layout = [](const torch::Tensor& t, bool transposed) {
      const auto f = t.detach().to(torch::kFloat32);
      return (transposed ? f.transpose(1, 2).contiguous().transpose(1, 2) : f.clone())
          .requires_grad_();
    };
    const auto a = layout(a64, c.transposed_a), b = layout(b64, c.transposed_b);
    EXPECT_EQ(a.is_contiguous(), !c.transposed_a);
    const auto g = torch::randn({c.b, c.m, c.n}, torch::kFloat64);
    const auto y = batched_matmul(a, b);
    y.backward(g.to(torch::kFloat32));
    const auto y64 = torch::bmm(a64, b64);
    y64.backward(g);
    EXPECT_LT(max_rel(y.to(torch::kFloat64), y64), 1e-5);
    EXPECT_LT(max_rel(a.grad().to(torch::kFloat64), a64.grad()), 1e-5);
    EXPECT_LT(max_rel(b.grad().to(torch::kFloat64), b64.grad()), 1e-5);
  }
}

// The GPT prior's heads: [N, heads, T, d] views of [N, T, C] (transposed, so the two batch dims
// are not mergeable), scores and weighted values.
TEST(BatchedMatmul, FourDimensionalViews) {
  torch::manual_seed(1);
  const auto x64 = torch::randn({2, 7, 3, 8}, torch::kFloat64);  // [N, T, heads, d]
  const auto q64 = x64.transpose(1, 2).requires_grad_();         // [N, heads, T, d]
  const auto k64 = (x64 * 0.5).detach().transpose(1, 2).requires_grad_();
  const auto q = q64.detach().to(torch::kFloat32).requires_grad_();
  const auto k = k64.detach().to(torch::kFloat32).requires_grad_();
  const auto g = torch::randn({2, 3, 7, 7}, torch::kFloat64);
  batched_matmul(q, k.transpose(-2, -1)).backward(g.to(torch::kFloat32));
  const auto y64 = torch::matmul(q64, k64.transpose(-2, -1));
  y64.backward(g);
  EXPECT_LT(max_rel(batched_matmul(q, k.transpose(-2, -1)).to(torch::kFloat64), y64), 1e-5);
  EXPECT_LT(max_rel(q.grad().to(torch::kFloat64), q64.grad()), 1e-5);
  EXPECT_LT(max_rel(k.grad().to(torch::kFloat64), k64.grad()), 1e-5);
}

TEST(BatchedMatmul, GradientOnlyWhereAsked) {
  const auto a = torch::randn({2, 3, 4}), b = torch::randn({2, 4, 5}).requires_grad_();
  batched_matmul(a, b).sum().backward();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_LT(max_rel(b.grad(), torch::bmm(a.transpose(1, 2), torch::ones({2, 3, 5}))), 1e-6);
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(batched_matmul(a, b).requires_grad());
}

TEST(BatchedMatmul, OtherwiseTorchMatmul) {
  const auto a = torch::randn({2, 3, 4}, torch::kFloat64),
             b = torch::randn({2, 4, 5}, torch::kFloat64);
  EXPECT_TRUE(batched_matmul(a, b).equal(torch::bmm(a, b)));
  // broadcast batch dims: torch::matmul's own
  const auto shared = torch::randn({4, 5});
  EXPECT_TRUE(batched_matmul(torch::ones({2, 3, 4}), shared)
                  .equal(torch::matmul(torch::ones({2, 3, 4}), shared)));
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 5, 4})), c10::Error);
  EXPECT_EQ(batched_matmul(torch::randn({0, 3, 4}), torch::randn({0, 4, 5})).sizes(),
            (std::vector<int64_t>{0, 3, 5}));
}

}  // namespace
}  // namespace lf
