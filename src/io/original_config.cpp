// Original taming / latent-diffusion configs -> our model config: see original_config.h. Defaults
// are those of taming.modules.diffusionmodules.model.Encoder, VQLPIPSWithDiscriminator and
// ldm.modules.losses.LPIPSWithDiscriminator.
#include "io/original_config.h"

#include <cmath>
#include <optional>
#include <set>

#include "core/error.h"
#include "io/json_snippet.h"

namespace lf {
namespace {

constexpr const char* kOriginalConfig = "original_config";

// The class name of a "module.Class" target.
std::string class_name(const std::string& target) {
  const size_t dot = target.rfind('.');
  return dot == std::string::npos ? target : target.substr(dot + 1);
}

// Typed reads of one object, naming "source: path.key" in errors.
class Reader {
 public:
  Reader(const Json& object, std::string source, std::string path)
      : object_(object), source_(std::move(source)), path_(std::move(path)) {
    if (!object_.is_object())
      fail(kOriginalConfig, "{}: {}: expected a mapping, got {}", source_, path_,
           json_snippet(object_));
  }

  const Json* find(const std::string& key) {
    seen_.insert(key);
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  const Json& at(const std::string& key) {
    const Json* v = find(key);
    if (!v) fail(kOriginalConfig, "{}: {}.{}: missing", source_, path_, key);
    return *v;
  }
  void ignore(std::initializer_list<const char*> keys) {
    for (const char* k : keys) seen_.insert(k);
  }

  int64_t integer(const std::string& key, std::optional<int64_t> fallback = std::nullopt,
                  int64_t min = 1) {
    const Json* v = find(key);
    if (!v && fallback) return *fallback;
    if (!v) fail(kOriginalConfig, "{}: {}.{}: missing", source_, path_, key);
    return to_integer(*v, key, min);
  }
  double number(const std::string& key, double fallback) {
    const Json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number() || !std::isfinite(v->get<double>()))
      fail(kOriginalConfig, "{}: {}.{}: expected a number, got {}", source_, path_, key,
           json_snippet(*v));
    return v->get<double>();
  }
  bool boolean(const std::string& key, bool fallback) {
    const Json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean())
      fail(kOriginalConfig, "{}: {}.{}: expected true or false, got {}", source_, path_, key,
           json_snippet(*v));
    return v->get<bool>();
  }
  std::string text(const std::string& key, const std::string& fallback) {
    const Json* v = find(key);
    if (!v) return fallback;
    if (!v->is_string())
      fail(kOriginalConfig, "{}: {}.{}: expected a string, got {}", source_, path_, key,
           json_snippet(*v));
    return v->get<std::string>();
  }
  std::vector<int64_t> integers(const std::string& key,
                                std::optional<std::vector<int64_t>> fallback, int64_t min) {
    const Json* v = find(key);
    if (!v && fallback) return *fallback;
    if (!v) fail(kOriginalConfig, "{}: {}.{}: missing", source_, path_, key);
    if (!v->is_array())
      fail(kOriginalConfig, "{}: {}.{}: expected a list of integers, got {}", source_, path_, key,
           json_snippet(*v));
    std::vector<int64_t> out;
    for (const Json& item : *v) out.push_back(to_integer(item, key, min));
    return out;
  }

  // Keys of the object that no read or ignore() named.
  void reject_unknown() const {
    for (auto it = object_.begin(); it != object_.end(); ++it)
      if (!seen_.count(it.key()))
        fail(kOriginalConfig, "{}: {}.{}: unknown key (value {})", source_, path_, it.key(),
             json_snippet(it.value()));
  }

  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    fail(kOriginalConfig, "{}: {}.{}: {}", source_, path_, key, what);
  }
  const std::string& source() const { return source_; }
  const std::string& path() const { return path_; }

 private:
  int64_t to_integer(const Json& v, const std::string& key, int64_t min) const {
    const bool integral =
        v.is_number_integer() ||
        (v.is_number_float() && std::isfinite(v.get<double>()) &&
         v.get<double>() == std::floor(v.get<double>()) && std::fabs(v.get<double>()) < 9e15);
    if (!integral)
      fail(kOriginalConfig, "{}: {}.{}: expected an integer, got {}", source_, path_, key,
           json_snippet(v));
    const int64_t n =
        v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX
            ? INT64_MAX
            : (v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>()));
    if (n < min)
      fail(kOriginalConfig, "{}: {}.{}: expected an integer >= {}, got {}", source_, path_, key,
           min, n);
    return n;
  }

  const Json& object_;
  std::string source_, path_;
  std::set<std::string> seen_;
};

const Json& params_of(const Json& config, const std::string& source, const std::string& path) {
  const auto it = config.find("params");
  if (it == config.end() || !it->is_object())
    fail(kOriginalConfig, "{}: {}.params: expected a mapping", source, path);
  return *it;
}

Json read_ddconfig(Reader& parent) {
  Reader r(parent.at("ddconfig"), parent.source(), parent.path() + ".ddconfig");
  Json dd;
  for (const char* key :
       {"ch", "out_ch", "in_channels", "resolution", "z_channels", "num_res_blocks"})
    dd[key] = r.integer(key);
  dd["ch_mult"] = r.integers("ch_mult", std::vector<int64_t>{1, 2, 4, 8}, 1);
  if (dd["ch_mult"].empty()) r.bad("ch_mult", "expected at least one level, got []");
  dd["attn_resolutions"] = r.integers("attn_resolutions", std::nullopt, 1);
  dd["dropout"] = r.number("dropout", 0.0);
  dd["double_z"] = r.boolean("double_z", true);
  for (const char* key : {"resamp_with_conv", "give_pre_end", "tanh_out"})
    if (r.find(key)) dd[key] = r.boolean(key, false);
  if (const Json* type = r.find("attn_type")) {
    std::string t = r.text("attn_type", "vanilla");
    if (t == "vanilla-xformers") t = "vanilla";  // the same attention, another kernel
    if (t != "vanilla" && t != "none")
      r.bad("attn_type", "expected vanilla, vanilla-xformers or none, got " + json_snippet(*type));
    dd["attn_type"] = t;
  }
  if (r.boolean("use_linear_attn", false))
    r.bad("use_linear_attn", "linear attention is not supported");
  r.reject_unknown();
  return dd;
}

// lossconfig -> "loss_original" (null for none); `kind` is the model's ("vq" or "kl").
Json read_loss(Reader& parent, const std::string& kind) {
  const Json* config = parent.find("lossconfig");
  if (!config) return nullptr;
  const std::string path = parent.path() + ".lossconfig";
  Reader top(*config, parent.source(), path);
  const std::string target = top.text("target", "");
  const std::string cls = class_name(target);
  if (target == "torch.nn.Identity" || cls == "DummyLoss") return nullptr;
  const std::string expected = kind == "vq" ? "VQLPIPSWithDiscriminator" : "LPIPSWithDiscriminator";
  if (cls != expected)
    fail(kOriginalConfig,
         "{}: {}.target: {} is not supported for this model (expected {} or "
         "torch.nn.Identity)",
         parent.source(), path, target.empty() ? "missing" : target, expected);
  const Json empty = Json::object();
  const Json* params = top.find("params");
  Reader r(params ? *params : empty, parent.source(), path + ".params");
  Json loss;
  loss["kind"] = kind;
  loss["disc_start"] = r.integer("disc_start", std::nullopt, 0);
  loss["pixel_weight"] = r.number("pixelloss_weight", 1.0);
  loss["disc_num_layers"] = r.integer("disc_num_layers", 3, 1);
  loss["disc_in_channels"] = r.integer("disc_in_channels", 3, 1);
  loss["disc_factor"] = r.number("disc_factor", 1.0);
  loss["disc_weight"] = r.number("disc_weight", 1.0);
  loss["perceptual_weight"] = r.number("perceptual_weight", 1.0);
  loss["use_actnorm"] = r.boolean("use_actnorm", false);
  loss["disc_loss"] = r.text("disc_loss", "hinge");
  if (loss["disc_loss"] != "hinge" && loss["disc_loss"] != "vanilla")
    r.bad("disc_loss", "expected hinge or vanilla, got " + json_snippet(loss["disc_loss"]));
  if (r.boolean("disc_conditional", false))
    r.bad("disc_conditional", "a conditional discriminator is not supported");
  if (kind == "vq") {
    loss["codebook_weight"] = r.number("codebook_weight", 1.0);
    loss["disc_ndf"] = r.integer("disc_ndf", 64, 1);
    // ldm's VQLPIPSWithDiscriminator: only its defaults are what taming's loss computes.
    if (r.text("perceptual_loss", "lpips") != "lpips")
      r.bad("perceptual_loss", "only lpips is supported");
    if (r.text("pixel_loss", "l1") != "l1") r.bad("pixel_loss", "only l1 is supported");
    r.ignore({"n_classes"});  // only for logging codebook perplexity
  } else {
    loss["disc_ndf"] = 64;  // ldm's LPIPSWithDiscriminator keeps NLayerDiscriminator's default
    loss["kl_weight"] = r.number("kl_weight", 1.0);
    loss["logvar_init"] = r.number("logvar_init", 0.0);
  }
  r.reject_unknown();
  return loss;
}

// Parameters of VQModel / AutoencoderKL that do not change the network or the loss.
void ignore_training_params(Reader& r) {
  r.ignore({"ckpt_path", "ignore_keys", "image_key", "monitor", "colorize_nlabels",
            "scheduler_config", "lr_g_factor", "use_ema", "batch_resize_range",
            "sane_index_shape"});
}

Json vqgan_config(const Json& params, const std::string& source, const std::string& path,
                  const std::string& target) {
  Reader r(params, source, path);
  if (r.find("remap"))
    r.bad("remap", fmt::format("{} with a remapped codebook (remap) is not supported", target));
  Json out = {{"type", "vqgan"}};
  out["ddconfig"] = read_ddconfig(r);
  out["embed_dim"] = r.integer("embed_dim");
  out["n_embed"] = r.integer("n_embed");
  if (Json loss = read_loss(r, "vq"); !loss.is_null()) out["loss_original"] = std::move(loss);
  ignore_training_params(r);
  r.reject_unknown();
  return out;
}

Json autoencoder_kl_config(const Json& params, const std::string& source, const std::string& path,
                           double scale_factor) {
  Reader r(params, source, path);
  Json out = {{"type", "autoencoder_kl"}};
  out["ddconfig"] = read_ddconfig(r);
  if (!out["ddconfig"]["double_z"].get<bool>())
    r.bad("ddconfig.double_z",
          "AutoencoderKL needs true (the encoder emits mean and log-variance)");
  out["embed_dim"] = r.integer("embed_dim");
  out["scale_factor"] = scale_factor;
  if (Json loss = read_loss(r, "kl"); !loss.is_null()) out["loss_original"] = std::move(loss);
  ignore_training_params(r);
  r.reject_unknown();
  return out;
}

// Our model config for one {target, params} config; null when the target is not an autoencoder.
Json autoencoder_config(const Json& config, const std::string& source, const std::string& path,
                        double scale_factor) {
  const auto t = config.find("target");
  if (t == config.end() || !t->is_string())
    fail(kOriginalConfig, "{}: {}.target: expected a class name, got {}", source, path,
         t == config.end() ? "nothing" : json_snippet(*t));
  const std::string target = t->get<std::string>();
  const std::string cls = class_name(target);
  if (cls == "VQModel" || cls == "VQModelInterface")
    return vqgan_config(params_of(config, source, path), source, path + ".params", target);
  if (cls == "AutoencoderKL")
    return autoencoder_kl_config(params_of(config, source, path), source, path + ".params",
                                 scale_factor);
  return nullptr;
}

constexpr const char* kSupported =
    "supported: taming.models.vqgan.VQModel, ldm.models.autoencoder.VQModel / VQModelInterface / "
    "AutoencoderKL, and latent-diffusion / Stable Diffusion configs whose first_stage_config is "
    "one of these";

}  // namespace

bool is_original_config(const Json& json) {
  if (!json.is_object()) return false;
  const auto model = json.find("model");
  return model != json.end() && model->is_object() && model->contains("target") &&
         (*model)["target"].is_string();
}

Json model_config_from_original(const Json& json, const std::string& source) {
  if (!is_original_config(json))
    fail(kOriginalConfig, "{}: not a taming/latent-diffusion config (expected model.target)",
         source);
  const Json& model = json.at("model");
  const std::string target = model.at("target").get<std::string>();
  const std::string cls = class_name(target);

  Json out = autoencoder_config(model, source, "model", 1.0);
  if (!out.is_null()) return out;

  // latent-diffusion / Stable Diffusion: the autoencoder is the first stage.
  if (cls.rfind("Latent", 0) == 0 && cls.size() >= 15 &&
      cls.compare(cls.size() - 9, 9, "Diffusion") == 0) {
    const Json& params = params_of(model, source, "model");
    const auto first = params.find("first_stage_config");
    if (first == params.end() || !first->is_object())
      fail(kOriginalConfig,
           "{}: model.params.first_stage_config: expected a mapping ({} has no first "
           "stage)",
           source, target);
    double scale = 1.0;  // LatentDiffusion's default
    if (const auto s = params.find("scale_factor"); s != params.end() && !s->is_null()) {
      if (!s->is_number() || !std::isfinite(s->get<double>()) || s->get<double>() <= 0)
        fail(kOriginalConfig, "{}: model.params.scale_factor: expected a positive number, got {}",
             source, json_snippet(*s));
      scale = s->get<double>();
    }
    out = autoencoder_config(*first, source, "model.params.first_stage_config", scale);
    if (!out.is_null()) return out;
    fail(kOriginalConfig, "{}: model.params.first_stage_config.target is {} ({})", source,
         first->at("target").get<std::string>(), kSupported);
  }
  if (cls == "Net2NetTransformer")
    fail(kOriginalConfig,
         "{}: model.target is {}, a transformer over VQGAN codes, not an autoencoder; import "
         "the VQGAN with its own config ({})",
         source, target, kSupported);
  fail(kOriginalConfig, "{}: model.target is {} ({})", source, target, kSupported);
}

}  // namespace lf
