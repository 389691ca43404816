// taming/ldm Encoder and Decoder: see ldm_coder.h.
#include "models/ldm_coder.h"

#include <algorithm>

#include "core/error.h"
#include "models/ae.h"
#include "models/conv_algorithm.h"

namespace lf {
namespace nn = torch::nn;

namespace {

nn::Conv2d conv3x3(int64_t in, int64_t out) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(1).padding(1));
}

bool has_attention(const LdmCoderOptions& o, int64_t resolution) {
  const auto& list = o.attn_resolutions();
  return o.attn_type() != "none" && std::find(list.begin(), list.end(), resolution) != list.end();
}

// Registers a level's block/attn lists under the original names.
LdmLevel make_level(std::vector<LdmResnetBlock> blocks, std::vector<LdmAttnBlock> attns) {
  LdmLevel level;
  level->block = level->register_module("block", nn::ModuleList());
  level->attn = level->register_module("attn", nn::ModuleList());
  for (auto& b : blocks) level->block->push_back(b);
  for (auto& a : attns) level->attn->push_back(a);
  level->blocks = std::move(blocks);
  level->attns = std::move(attns);
  return level;
}

torch::Tensor run_level_blocks(LdmLevel& level, torch::Tensor h) {
  for (size_t i = 0; i < level->blocks.size(); ++i) {
    h = level->blocks[i]->forward(h);
    if (!level->attns.empty()) h = level->attns[i]->forward(h);
  }
  return h;
}

}  // namespace

void to_json(Json& json, const LdmCoderOptions& o) {
  json = Json{{"ch", o.ch()},
              {"out_ch", o.out_ch()},
              {"ch_mult", o.ch_mult()},
              {"num_res_blocks", o.num_res_blocks()},
              {"attn_resolutions", o.attn_resolutions()},
              {"dropout", o.dropout()},
              {"resamp_with_conv", o.resamp_with_conv()},
              {"in_channels", o.in_channels()},
              {"resolution", o.resolution()},
              {"z_channels", o.z_channels()},
              {"double_z", o.double_z()},
              {"give_pre_end", o.give_pre_end()},
              {"tanh_out", o.tanh_out()},
              {"attn_type", o.attn_type()}};
}

void from_json(const Json& json, LdmCoderOptions& o) {
  OptionReader read(json, "ddconfig");
  read("ch", o.ch())("out_ch", o.out_ch())("ch_mult", o.ch_mult());
  read("num_res_blocks", o.num_res_blocks())("attn_resolutions", o.attn_resolutions());
  read("dropout", o.dropout())("resamp_with_conv", o.resamp_with_conv());
  read("in_channels", o.in_channels())("resolution", o.resolution())("z_channels", o.z_channels());
  read("double_z", o.double_z())("give_pre_end", o.give_pre_end())("tanh_out", o.tanh_out());
  read("attn_type", o.attn_type());
  if (const Json* linear = read.take("use_linear_attn"); linear && *linear != Json(false))
    fail("ddconfig",
         "use_linear_attn: only false is supported (linear attention is not "
         "implemented), got {}",
         linear->dump());
  read.finish();
}

void check_ldm_coder_options(const LdmCoderOptions& o, const char* where) {
  if (o.ch() <= 0 || o.ch() % 32 != 0)
    fail(where, "ddconfig.ch: expected a positive multiple of 32 (GroupNorm groups), got {}",
         o.ch());
  if (o.ch_mult().empty()) fail(where, "ddconfig.ch_mult: expected at least one level, got []");
  for (auto m : o.ch_mult())
    if (m <= 0)
      fail(where, "ddconfig.ch_mult: expected positive multipliers, got {}",
           shape_str(o.ch_mult()));
  if (o.num_res_blocks() < 1)
    fail(where, "ddconfig.num_res_blocks: expected >= 1, got {}", o.num_res_blocks());
  if (o.in_channels() <= 0 || o.out_ch() <= 0 || o.z_channels() <= 0)
    fail(where, "ddconfig: expected positive in_channels, out_ch, z_channels, got {}, {}, {}",
         o.in_channels(), o.out_ch(), o.z_channels());
  if (o.attn_type() != "vanilla" && o.attn_type() != "none")
    fail(where, "ddconfig.attn_type: expected vanilla or none, got '{}'", o.attn_type());
  if (o.dropout() < 0 || o.dropout() >= 1)
    fail(where, "ddconfig.dropout: expected [0, 1), got {}", o.dropout());
}

LdmMidImpl::LdmMidImpl(int64_t channels, double dropout, bool attention) {
  block_1 = register_module("block_1", LdmResnetBlock(channels, channels, dropout));
  if (attention) attn_1 = register_module("attn_1", LdmAttnBlock(channels));
  block_2 = register_module("block_2", LdmResnetBlock(channels, channels, dropout));
}

torch::Tensor LdmMidImpl::forward(const torch::Tensor& x) {
  auto h = block_1(x);
  if (attn_1) h = attn_1(h);
  return block_2(h);
}

LdmEncoderImpl::LdmEncoderImpl(LdmCoderOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check_ldm_coder_options(o, "encoder");
  conv_in = register_module("conv_in", conv3x3(o.in_channels(), o.ch()));
  down = register_module("down", nn::ModuleList());
  const auto levels = static_cast<int64_t>(o.ch_mult().size());
  int64_t resolution = o.resolution();
  int64_t block_in = o.ch();
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t block_out = o.ch() * o.ch_mult()[level];
    std::vector<LdmResnetBlock> blocks;
    std::vector<LdmAttnBlock> attns;
    for (int64_t i = 0; i < o.num_res_blocks(); ++i) {
      blocks.emplace_back(block_in, block_out, o.dropout());
      block_in = block_out;
      if (has_attention(o, resolution)) attns.emplace_back(block_in);
    }
    auto down_level = make_level(std::move(blocks), std::move(attns));
    if (level != levels - 1) {
      down_level->downsample =
          down_level->register_module("downsample", LdmDownsample(block_in, o.resamp_with_conv()));
      resolution /= 2;
    }
    down->push_back(down_level);
    levels_.push_back(down_level);
  }
  mid = register_module("mid", LdmMid(block_in, o.dropout(), o.attn_type() != "none"));
  norm_out = register_module("norm_out", ldm_group_norm(block_in));
  conv_out = register_module("conv_out",
                             conv3x3(block_in, o.double_z() ? 2 * o.z_channels() : o.z_channels()));
}

torch::Tensor LdmEncoderImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != options_.in_channels() || x.size(2) % factor() != 0 ||
      x.size(3) % factor() != 0 || x.size(2) == 0 || x.size(3) == 0)
    fail("encoder", "expected images [N, {}, H, W] with H and W positive multiples of {}, got {}",
         options_.in_channels(), factor(), shape_str(x.sizes()));
  auto h = conv_in(x);
  for (auto& level : levels_) {
    h = run_level_blocks(level, h);
    if (level->downsample) h = level->downsample(h);
  }
  h = mid(h);
  return conv_forward(*conv_out, swish(norm_out(h)));
}

LdmDecoderImpl::LdmDecoderImpl(LdmCoderOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check_ldm_coder_options(o, "decoder");
  const auto levels = static_cast<int64_t>(o.ch_mult().size());
  int64_t block_in = o.ch() * o.ch_mult().back();
  int64_t resolution = o.resolution() >> (levels - 1);
  conv_in = register_module("conv_in", conv3x3(o.z_channels(), block_in));
  mid = register_module("mid", LdmMid(block_in, o.dropout(), o.attn_type() != "none"));
  levels_.resize(levels);
  for (int64_t level = levels - 1; level >= 0; --level) {
    const int64_t block_out = o.ch() * o.ch_mult()[level];
    std::vector<LdmResnetBlock> blocks;
    std::vector<LdmAttnBlock> attns;
    for (int64_t i = 0; i < o.num_res_blocks() + 1; ++i) {
      blocks.emplace_back(block_in, block_out, o.dropout());
      block_in = block_out;
      if (has_attention(o, resolution)) attns.emplace_back(block_in);
    }
    auto up_level = make_level(std::move(blocks), std::move(attns));
    if (level != 0) {
      up_level->upsample =
          up_level->register_module("upsample", LdmUpsample(block_in, o.resamp_with_conv()));
      resolution *= 2;
    }
    levels_[level] = up_level;
  }
  up = register_module("up", nn::ModuleList());
  for (const auto& level : levels_) up->push_back(level);  // "up.0" = finest, as the reference
  norm_out = register_module("norm_out", ldm_group_norm(block_in));
  conv_out = register_module("conv_out", conv3x3(block_in, o.out_ch()));
}

torch::Tensor LdmDecoderImpl::forward(const torch::Tensor& z) {
  if (z.dim() != 4 || z.size(1) != options_.z_channels() || z.size(2) == 0 || z.size(3) == 0)
    fail("decoder", "expected latents [N, {}, h, w], got {}", options_.z_channels(),
         shape_str(z.sizes()));
  auto h = mid(conv_forward(*conv_in, z));
  for (auto level = levels_.rbegin(); level != levels_.rend(); ++level) {
    h = run_level_blocks(*level, h);
    if ((*level)->upsample) h = (*level)->upsample(h);
  }
  if (options_.give_pre_end()) return h;
  h = conv_out(swish(norm_out(h)));
  return options_.tanh_out() ? torch::tanh(h) : h;
}

}  // namespace lf
