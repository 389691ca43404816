// Run folder report: metrics, grids and plots.
#include "eval/run_report.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "viz/plot.h"

namespace lf {

torch::Tensor comparison_grid_images(const torch::Tensor& originals,
                                     const torch::Tensor& reconstructions) {
  return torch::cat({originals.to(torch::kCPU), reconstructions.to(torch::kCPU).clamp(-1, 1)}, 0);
}

torch::Tensor enlarged_for_viewing(const torch::Tensor& images) {
  const int64_t h = images.size(2), factor = (96 + h - 1) / h;
  if (factor <= 1) return images;
  return images.repeat_interleave(factor, 2).repeat_interleave(factor, 3);
}

void plot_training_curves(const std::string& log_path, const std::string& out_path) {
  std::ifstream in(log_path);
  if (!in) fail("plot_training_curves", "{}: cannot open", log_path);
  std::map<std::string, PlotSeries> series;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json record;
    try {
      record = Json::parse(line);
    } catch (const Json::parse_error&) {
      fail("plot_training_curves", "{}: a line is not JSON: {}", log_path, line.substr(0, 80));
    }
    const double step = record.value("step", 0.0);
    for (const auto& [key, value] : record.items()) {
      if (key.rfind("loss", 0) != 0 || !value.is_number()) continue;
      auto& s = series[key];
      s.name = key;
      s.x.push_back(step);
      s.y.push_back(value.get<double>());
    }
  }
  std::vector<PlotSeries> list;
  for (auto& [k, s] : series) list.push_back(std::move(s));
  PlotOptions options;
  options.title = "training losses";
  options.x_label = "step";
  options.y_label = "loss (log scale)";
  options.log_y = true;
  save_image(out_path, plot_lines(list, options));
}

Json write_run_report(const std::string& run_dir, AutoencoderImpl& model, const Dataset& test_data,
                      torch::Device device, int64_t eval_limit) {
  return write_run_report(run_dir, model, test_data, device,
                          evaluate(model, test_data, device, 256, eval_limit));
}

Json write_run_report(const std::string& run_dir, AutoencoderImpl& model, const Dataset& test_data,
                      torch::Device device, const EvalResult& result) {
  torch::NoGradGuard no_grad;
  model.eval();
  Json metrics = result.to_json();
  metrics["split"] = test_data.describe();
  metrics["model"] = model.kind();
  write_file_atomic(run_dir + "/metrics.json", metrics.dump(2) + "\n");

  const auto originals = first_images(test_data, 16).to(device);
  save_grid(run_dir + "/reconstructions.png",
            enlarged_for_viewing(comparison_grid_images(originals, model.reconstruct(originals))),
            8);

  if (std::filesystem::exists(run_dir + "/log.jsonl"))
    plot_training_curves(run_dir + "/log.jsonl", run_dir + "/training_curves.png");

  if (result.code_counts.defined()) {
    const auto counts = result.code_counts.to(torch::kFloat64);
    std::vector<double> values(counts.data_ptr<double>(),
                               counts.data_ptr<double>() + counts.numel());
    PlotOptions options;
    options.title =
        fmt::format("code usage on {} images: {:.1f}% used, perplexity {:.1f} of {}", result.images,
                    100 * result.code_usage, result.code_perplexity, counts.numel());
    options.x_label = "code index";
    options.y_label = "count";
    save_image(run_dir + "/codebook_usage.png", plot_bars(values, options));
  }
  if (model.kind() == "vae")
    save_grid(run_dir + "/samples.png",
              enlarged_for_viewing(model.sample(64).to(torch::kCPU).clamp(-1, 1)), 8);
  return metrics;
}

}  // namespace lf
