// The API behind the codebook, latent, sample and train pages of `latentforge serve`, through
// cpp-httplib's client against a child process: capabilities, test images, code maps encoded,
// edited and decoded, code usage, interpolation and traversal, prior sampling with partial decodes
// on an event stream and image completion, event-stream limits, and training runs started,
// stopped and resumed from the page.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "io/config.h"
#include "io/image.h"
#include "io/state_dict.h"
#include "models/vector_quantizer.h"
#include "tools/cli_test_util.h"
#include "tools/serve_test_util.h"
#include "train/checkpoint.h"
#include "train/trainable_types.h"

namespace fs = std::filesystem;
using lf::Json;
using lf::test::ServeProcess;

namespace {

// An untrained model of `type` (Fashion-MNIST preset) saved as a run folder of `dir`.
lf::TrainablePtr make_run_folder(const std::string& dir, const Json& model_options,
                                 const Json& extra = Json::object()) {
  fs::create_directories(dir);
  lf::Config model_config(model_options);
  auto model = lf::make_trainable(model_config);
  lf::save_module_safetensors(*model, dir + "/model.safetensors");
  Json config = {{"model", lf::model_config_json(*model)},
                 {"data", {{"root", "fashion-mnist"}, {"image_size", 0}}},
                 {"train", {{"steps", 3}}}};
  config.update(extra);
  std::ofstream(dir + "/config.json") << config.dump(2);
  return model;
}

std::string base64_png(const torch::Tensor& image) {
  return lf::test::base64(lf::encode_png(image));
}

// Server-sent events "event: NAME\ndata: JSON\n\n" -> (name, data) pairs.
std::vector<std::pair<std::string, Json>> parse_events(const std::string& text) {
  std::vector<std::pair<std::string, Json>> events;
  size_t at = 0;
  while ((at = text.find("event: ", at)) != std::string::npos) {
    const size_t name_end = text.find('\n', at);
    const size_t data_at = text.find("data: ", name_end);
    const size_t data_end = text.find("\n\n", data_at);
    if (name_end == std::string::npos || data_at == std::string::npos ||
        data_end == std::string::npos)
      break;
    events.emplace_back(text.substr(at + 7, name_end - at - 7),
                        Json::parse(text.substr(data_at + 6, data_end - data_at - 6)));
    at = data_end;
  }
  return events;
}

class ServePages : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = ::testing::TempDir() + "/serve_pages_" + std::to_string(getpid());
    fs::remove_all(root_);
    make_run_folder(root_ + "/vq", {{"type", "vqvae"}, {"preset", "fashion"}});
    make_run_folder(root_ + "/vae", {{"type", "vae"}, {"preset", "fashion"}});
    // A class-conditional transformer over vq's 7x7 codes.
    auto vq = lf::load_model(root_ + "/vq", torch::kCPU);
    const int64_t k = lf::codebook_size(*vq.model);
    make_run_folder(root_ + "/prior",
                    {{"type", "gpt"},
                     {"preset", "fashion"},
                     {"num_codes", k},
                     {"grid", {7, 7}},
                     {"num_classes", 10}},
                    {{"stage1", root_ + "/vq"}});
    configs_ = root_ + "_configs";
    fs::create_directories(configs_);
    std::ofstream(configs_ + "/tiny_vq.yaml")
        << "# A VQ-VAE trained for a few steps (the serve tests)\n"
           "model:\n  type: vqvae\n  preset: fashion\n"
           "data:\n  root: fashion-mnist\n  limit: 512\n"
           "train:\n  steps: 12\n  batch_size: 16\n  log_every: 2\n  checkpoint_every: 4\n"
           "  warmup_steps: 2\n  num_workers: 0\n";
    server_ = std::make_unique<ServeProcess>(std::vector<std::string>{
        "--models", root_, "--configs", configs_, "--http-threads", "12", "--max-streams", "4"});
  }
  static void TearDownTestSuite() {
    server_.reset();
    fs::remove_all(root_);
    fs::remove_all(configs_);
  }
  void SetUp() override {
    ASSERT_GT(server_->port(), 0) << "first line: '" << server_->first_line() << "'\n"
                                  << server_->log();
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_connection_timeout(10, 0);
    c.set_read_timeout(120, 0);
    return c;
  }
  static httplib::Headers origin() {
    return {{"Origin", "http://127.0.0.1:" + std::to_string(server_->port())}};
  }
  // POSTs JSON and waits for the job: the finished job (state, result or error).
  static Json run_job(const std::string& path, const Json& body) {
    auto res = client().Post(path + "?wait=120", origin(), body.dump(), "application/json");
    if (!res) return {{"state", "no answer"}};
    if (res->status != 200)
      return {{"state", "refused"}, {"status", res->status}, {"body", res->body}};
    return Json::parse(res->body);
  }
  static Json get_json(const std::string& path) {
    auto res = client().Get(path);
    return res && res->status == 200 ? Json::parse(res->body) : Json();
  }

  static inline std::string root_, configs_;
  static inline std::unique_ptr<ServeProcess> server_;
};

TEST_F(ServePages, CapabilitiesSayWhatEachModelCanDo) {
  const Json models = get_json("/api/models")["models"];
  std::map<std::string, Json> by_id;
  for (const auto& m : models) by_id[m["id"]] = m["capabilities"];
  ASSERT_EQ(by_id.size(), 3u) << models.dump(2);
  EXPECT_GT(by_id["vq"]["codes"]["num_codes"].get<int64_t>(), 0);
  EXPECT_TRUE(by_id["vq"]["latent"].is_null());
  EXPECT_FALSE(by_id["vq"]["sample"].get<bool>());
  EXPECT_EQ(by_id["vae"]["latent"]["kind"], "vae");
  EXPECT_TRUE(by_id["vae"]["sample"].get<bool>());
  EXPECT_TRUE(by_id["vae"]["codes"].is_null());
  EXPECT_FALSE(by_id["prior"]["reconstruct"].get<bool>());
  EXPECT_EQ(by_id["prior"]["prior"]["num_classes"], 10);
  EXPECT_EQ(by_id["prior"]["prior"]["grid"], Json({7, 7}));
  EXPECT_FALSE(by_id["prior"]["prior"]["sketch"].get<bool>());
}

TEST_F(ServePages, EncodesACodeMapAndDecodesItsEdits) {
  const Json encoded =
      run_job("/api/models/vq/encode",
              {{"image", {{"upload", base64_png(torch::rand({1, 28, 28}) * 2 - 1)}}}});
  ASSERT_EQ(encoded["state"], "done") << encoded.dump();
  const Json& r = encoded["result"];
  ASSERT_EQ(r["h"], 7);
  ASSERT_EQ(r["w"], 7);
  const int64_t k = r["num_codes"];
  std::vector<int64_t> cells = r["indices"];
  ASSERT_EQ(cells.size(), 49u);
  for (int64_t c : cells) ASSERT_TRUE(c >= 0 && c < k);
  // The decode of the unedited map is the reconstruction; an edited cell changes it.
  const Json same = run_job("/api/models/vq/decode", {{"h", 7}, {"w", 7}, {"indices", cells}});
  ASSERT_EQ(same["state"], "done") << same.dump();
  EXPECT_EQ(same["result"]["image"], r["reconstruction"]);
  for (auto& c : cells) c = (c + 1) % k;
  const Json edited = run_job("/api/models/vq/decode", {{"h", 7}, {"w", 7}, {"indices", cells}});
  ASSERT_EQ(edited["state"], "done");
  EXPECT_NE(edited["result"]["image"], r["reconstruction"]);
  // Wrong counts are refused at once, codes outside the codebook when the job runs.
  auto wrong =
      client().Post("/api/models/vq/decode", origin(),
                    Json({{"h", 7}, {"w", 7}, {"indices", {1, 2}}}).dump(), "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 400);
  EXPECT_NE(wrong->body.find("expected 49"), std::string::npos) << wrong->body;
  cells[3] = k;
  const Json outside = run_job("/api/models/vq/decode", {{"h", 7}, {"w", 7}, {"indices", cells}});
  EXPECT_EQ(outside["state"], "failed");
  EXPECT_NE(outside["error"].get<std::string>().find("cell 3 holds code"), std::string::npos)
      << outside.dump();
  // The wrong kind of model, and an image that is not one.
  auto not_vq = client().Post("/api/models/vae/encode", origin(),
                              Json({{"image", {{"test_index", 0}}}}).dump(), "application/json");
  ASSERT_TRUE(not_vq);
  EXPECT_EQ(not_vq->status, 400);
  auto not_image =
      client().Post("/api/models/vq/encode", origin(),
                    Json({{"image", {{"upload", "bm90IGFuIGltYWdl"}}}}).dump(), "application/json");
  ASSERT_TRUE(not_image);
  EXPECT_EQ(not_image->status, 400) << not_image->body;
}

TEST_F(ServePages, RefusesTooLargeUploadsInsideJson) {
  auto res = client().Post(
      "/api/models/vq/encode", origin(),
      Json({{"image", {{"upload", base64_png(torch::zeros({1, 4100, 4100}))}}}}).dump(),
      "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413) << res->body;
}

TEST_F(ServePages, InterpolationStartsAtTheReconstructionAndTraversalShiftsOneDimension) {
  const std::string a = base64_png(torch::rand({1, 28, 28}) * 2 - 1);
  const std::string b = base64_png(torch::rand({1, 28, 28}) * 2 - 1);
  const Json rec = run_job("/api/models/vae/reconstruct", {{"image", {{"upload", a}}}});
  ASSERT_EQ(rec["state"], "done") << rec.dump();
  for (const char* mode : {"linear", "spherical"}) {
    const Json lerp =
        run_job("/api/models/vae/interpolate",
                {{"a", {{"upload", a}}}, {"b", {{"upload", b}}}, {"steps", 5}, {"mode", mode}});
    ASSERT_EQ(lerp["state"], "done") << lerp.dump();
    ASSERT_EQ(lerp["result"]["frames"].size(), 5u);
    EXPECT_EQ(lerp["result"]["t"][4], 1.0);
    if (std::string(mode) == "linear") {  // t = 0 is a's latent itself
      EXPECT_EQ(lerp["result"]["frames"][0], rec["result"]["images"]["reconstruction"]);
    }
    EXPECT_NE(lerp["result"]["frames"][0], lerp["result"]["frames"][4]);
  }
  const Json walk = run_job("/api/models/vae/traverse",
                            {{"image", {{"upload", a}}}, {"dim", 1}, {"span", 2}, {"steps", 3}});
  ASSERT_EQ(walk["state"], "done") << walk.dump();
  EXPECT_EQ(walk["result"]["values"], Json({-2.0, 0.0, 2.0}));
  EXPECT_EQ(walk["result"]["frames"][1], rec["result"]["images"]["reconstruction"]);
  const int64_t dims = walk["result"]["dims"];
  const Json beyond =
      run_job("/api/models/vae/traverse", {{"image", {{"upload", a}}}, {"dim", dims}});
  EXPECT_EQ(beyond["state"], "failed");
  const Json samples = run_job("/api/models/vae/sample", {{"n", 3}, {"seed", 7}});
  ASSERT_EQ(samples["state"], "done") << samples.dump();
  EXPECT_EQ(samples["result"]["images"].size(), 3u);
  EXPECT_EQ(run_job("/api/models/vae/sample", {{"n", 3}, {"seed", 7}})["result"]["images"],
            samples["result"]["images"]);  // a seed fixes them
}

TEST_F(ServePages, SamplesAPriorWithPartialDecodesOnItsEventStream) {
  auto submitted = client().Post(
      "/api/models/prior/sample", origin(),
      Json({{"n", 4}, {"seed", 1}, {"class", 3}, {"top_k", 20}, {"every", 10}, {"h", 7}, {"w", 14}})
          .dump(),
      "application/json");
  ASSERT_TRUE(submitted);
  ASSERT_EQ(submitted->status, 202) << submitted->body;
  const std::string id = Json::parse(submitted->body)["id"];
  std::string text;
  auto stream = client().Get("/api/jobs/" + id + "/events", [&](const char* data, size_t n) {
    text.append(data, n);
    return true;
  });
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->get_header_value("Content-Type"), "text/event-stream");
  const auto events = parse_events(text);
  ASSERT_FALSE(events.empty()) << text;
  ASSERT_EQ(events.back().first, "result") << text;
  const Json& job = events.back().second;
  ASSERT_EQ(job["state"], "done") << job.dump();
  EXPECT_EQ(job["result"]["labels"], Json({3, 3, 3, 3}));
  EXPECT_EQ(job["result"]["w"], 14);  // wider than the training grid: a sliding window
  ASSERT_EQ(job["result"]["codes"].size(), 4u);
  EXPECT_EQ(job["result"]["codes"][0].size(), 98u);
  // Unless the job finished before the stream opened, partial decodes came every 10 cells.
  int partials = 0;
  for (const auto& [name, data] : events)
    if (name == "partial") {
      ++partials;
      EXPECT_EQ(data["done"].get<int64_t>() % 10, 0);
      EXPECT_EQ(data["total"], 98);
      EXPECT_EQ(data["image"].get<std::string>().rfind("iVBORw0KGgo", 0), 0u);
    }
  std::printf("serve: %d partial decodes streamed\n", partials);
}

TEST_F(ServePages, CompletionKeepsTheTopOfTheImagesCodes) {
  const std::string image = base64_png(torch::rand({1, 28, 28}) * 2 - 1);
  const Json encoded = run_job("/api/models/vq/encode", {{"image", {{"upload", image}}}});
  ASSERT_EQ(encoded["state"], "done");
  const Json sampled = run_job(
      "/api/models/prior/sample",
      {{"n", 3}, {"seed", 2}, {"complete", {{"image", {{"upload", image}}}, {"keep", 0.5}}}});
  ASSERT_EQ(sampled["state"], "done") << sampled.dump();
  const int64_t kept = sampled["result"]["given_cells"];
  EXPECT_EQ(kept, 25);  // round(0.5 * 49)
  for (const auto& codes : sampled["result"]["codes"])
    for (int64_t i = 0; i < kept; ++i) EXPECT_EQ(codes[i], encoded["result"]["indices"][i]) << i;
  // A class-conditional prior refuses a class it does not know; a sketch it cannot use.
  EXPECT_EQ(run_job("/api/models/prior/sample", {{"class", 10}})["state"], "failed");
  EXPECT_EQ(run_job("/api/models/prior/sample", {{"sketch", {{"upload", image}}}})["state"],
            "failed");
}

TEST_F(ServePages, EventStreamsAreCappedFreedAndEndWithTheServer) {
  ServeProcess server({"--models", root_, "--http-threads", "8", "--max-streams", "3"});
  ASSERT_GT(server.port(), 0) << server.log();
  // Runs with a log: make one.
  std::ofstream(root_ + "/vq/log.jsonl") << Json({{"step", 1}, {"loss", 0.5}}).dump() << "\n";
  std::atomic<bool> stop{false};
  std::atomic<int> opened{0}, refused{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 5; ++i)
    readers.emplace_back([&] {
      httplib::Client c("127.0.0.1", server.port());
      c.set_read_timeout(30, 0);
      auto res = c.Get("/api/runs/vq/events", [&](const char*, size_t) {
        if (stop) return false;  // the tab closes
        return true;
      });
      if (res && res->status == 503)
        ++refused;
      else
        ++opened;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  httplib::Client c("127.0.0.1", server.port());
  auto health = c.Get("/api/health");  // streams do not starve requests
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(refused.load(), 2);
  stop = true;  // closed tabs give their places back, noticed at the next write (2 s)
  for (auto& t : readers) t.join();
  int open_streams = -1;
  for (int i = 0; i < 100 && open_streams != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto h = c.Get("/api/health");
    if (h && h->status == 200) open_streams = Json::parse(h->body)["event_streams"];
  }
  EXPECT_EQ(open_streams, 0);
  // Three new streams get places again; then the server stops with them open.
  for (int i = 0; i < 3; ++i)
    readers[i] = std::thread([&] {
      httplib::Client c2("127.0.0.1", server.port());
      c2.set_read_timeout(30, 0);
      auto res = c2.Get("/api/runs/vq/events", [&](const char*, size_t) { return true; });
      if (res && res->status == 503) ++refused;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(SIGTERM, 20.0), 0) << server.log();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int i = 0; i < 3; ++i) readers[i].join();
  EXPECT_EQ(refused.load(), 2);
  EXPECT_LT(seconds, 8.0);
  std::printf("serve: stopped with 3 event streams open in %.2f s\n", seconds);
  fs::remove(root_ + "/vq/log.jsonl");
}

TEST_F(ServePages, RefusesBadTrainingRequests) {
  const Json configs = get_json("/api/configs")["configs"];
  ASSERT_EQ(configs.size(), 1u);
  EXPECT_EQ(configs[0]["name"], "tiny_vq");
  EXPECT_EQ(configs[0]["type"], "vqvae");
  EXPECT_EQ(configs[0]["comment"], "A VQ-VAE trained for a few steps (the serve tests)");
  auto post = [&](const Json& body) {
    auto res = client().Post("/api/train", origin(), body.dump(), "application/json");
    return res ? res->status : -1;
  };
  EXPECT_EQ(post({{"config", "../tiny_vq"}, {"name", "x"}}), 400);
  EXPECT_EQ(post({{"config", "missing"}, {"name", "x"}}), 400);
  EXPECT_EQ(post({{"config", "tiny_vq"}, {"name", "../escape"}}), 400);
  EXPECT_EQ(post({{"config", "tiny_vq"}, {"name", "vq"}}), 400);  // the folder exists
  EXPECT_EQ(post({{"config", "tiny_vq"}}), 400);
  auto stop = client().Post("/api/runs/vq/stop", origin(), "", "application/json");
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->status, 404);  // no log: not a run
  EXPECT_EQ(get_json("/api/training")["state"], "idle");
}

// Needs Debian's dataset-fashion-mnist: a run started from the page, stopped (a checkpoint at the
// step it reached), resumed to its end, with previews and test images.
TEST_F(ServePages, TrainsStopsAndResumesARunStartedFromThePage) {
  if (!lf::test::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  auto wait_idle = [&] {
    for (int i = 0; i < 3000; ++i) {
      const Json t = get_json("/api/training");
      if (t["state"] == "idle") return t;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Json();
  };
  auto started =
      client().Post("/api/train", origin(),
                    Json({{"config", "tiny_vq"}, {"name", "from_page"}, {"steps", 100}}).dump(),
                    "application/json");
  ASSERT_TRUE(started);
  ASSERT_EQ(started->status, 202) << started->body;
  auto again =
      client().Post("/api/train", origin(),
                    Json({{"config", "tiny_vq"}, {"name", "second"}}).dump(), "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409);  // one run at a time
  // Stop it once it has logged a few steps.
  for (int i = 0; i < 600; ++i) {
    const Json log = get_json("/api/runs/from_page/log");
    if (!log.is_null() && log["last_step"].get<int64_t>() >= 8) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto stop = client().Post("/api/runs/from_page/stop", origin(), "", "application/json");
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->status, 200) << stop->body;
  const Json stopped = wait_idle();
  ASSERT_FALSE(stopped.is_null()) << "still training after 300 s";
  ASSERT_EQ(stopped["last_exit"]["state"], "stopped") << stopped.dump(2);
  EXPECT_EQ(stopped.dump().find(root_), std::string::npos) << "a path reached the page";
  const std::string latest = lf::latest_checkpoint(root_ + "/from_page");
  ASSERT_FALSE(latest.empty());
  EXPECT_FALSE(fs::exists(root_ + "/from_page/model.safetensors"));
  // Resumed, it runs to its end and writes its final weights and previews.
  auto resumed = client().Post("/api/runs/from_page/resume", origin(), "", "application/json");
  ASSERT_TRUE(resumed);
  ASSERT_EQ(resumed->status, 202) << resumed->body;
  const Json finished = wait_idle();
  ASSERT_FALSE(finished.is_null()) << "still training after 300 s";
  ASSERT_EQ(finished["last_exit"]["state"], "finished") << finished.dump(2);
  EXPECT_TRUE(fs::exists(root_ + "/from_page/model.safetensors"));
  const Json log = get_json("/api/runs/from_page/log");
  EXPECT_EQ(log["last_step"], 100);
  std::set<int64_t> steps;
  for (const auto& r : log["records"]) EXPECT_TRUE(steps.insert(r["step"].get<int64_t>()).second);
  const Json previews = get_json("/api/runs/from_page/previews");
  ASSERT_GE(previews["steps"].size(), 10u) << previews.dump();  // every 6 steps: about 20
  auto png = client().Get("/api/runs/from_page/previews/" +
                          std::to_string(previews["steps"].back().get<int64_t>()) + ".png");
  ASSERT_TRUE(png);
  EXPECT_EQ(png->status, 200);
  const Json thumbs = get_json("/api/models/from_page/test_images?offset=5&count=3");
  EXPECT_EQ(thumbs["total"], 10000);
  ASSERT_EQ(thumbs["images"].size(), 3u);
  EXPECT_EQ(thumbs["images"][0]["index"], 5);
  EXPECT_TRUE(thumbs["images"][0]["class_name"].is_string());
  const Json usage = run_job("/api/models/from_page/code_usage", {{"limit", 100}});
  ASSERT_EQ(usage["state"], "done") << usage.dump();
  EXPECT_EQ(usage["result"]["cells"], 100 * 49);
  EXPECT_EQ(usage["result"]["used"].get<int64_t>() + usage["result"]["dead"].get<int64_t>(),
            usage["result"]["num_codes"].get<int64_t>());
  const Json by_index =
      run_job("/api/models/from_page/reconstruct", {{"image", {{"test_index", 5}}}});
  EXPECT_EQ(by_index["state"], "done") << by_index.dump();
}

}  // namespace
