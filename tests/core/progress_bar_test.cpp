// Progress bar rendering: counts, rate, ETA, plain-line mode.
#include "core/progress_bar.h"

#include <gtest/gtest.h>

namespace lf {
namespace {

TEST(ProgressBar, FormatsDurations) {
  EXPECT_EQ(ProgressBar::format_duration(3.25), "3.2s");
  EXPECT_EQ(ProgressBar::format_duration(245), "4m05s");
  EXPECT_EQ(ProgressBar::format_duration(3720), "1h02m");
  EXPECT_EQ(ProgressBar::format_duration(-1), "?");
}

TEST(ProgressBar, RendersCountRateAndEta) {
  ProgressBarOptions options;
  options.label = "train";
  options.unit = "img";
  options.force_tty = 0;
  options.stream = std::tmpfile();
  ProgressBar bar(100, options);
  bar.update(25, "loss 0.5");
  const std::string line = bar.render(/*elapsed_s=*/5.0, 80);
  EXPECT_NE(line.find("train"), std::string::npos) << line;
  EXPECT_NE(line.find(" 25%"), std::string::npos) << line;
  EXPECT_NE(line.find("25/100"), std::string::npos) << line;
  EXPECT_NE(line.find("5.0 img/s"), std::string::npos) << line;
  EXPECT_NE(line.find("<15.0s"), std::string::npos) << line;  // 75 left at 5/s
  EXPECT_NE(line.find("loss 0.5"), std::string::npos) << line;
  bar.finish();
  std::fclose(options.stream);
}

TEST(ProgressBar, PlainModeWritesWholeLinesWithoutControlCharacters) {
  ProgressBarOptions options;
  options.force_tty = 0;
  options.stream = std::tmpfile();
  {
    ProgressBar bar(10, options);
    for (int i = 0; i < 10; ++i) bar.update();
    bar.finish("done");
  }
  std::rewind(options.stream);
  std::string text;
  for (int c; (c = std::fgetc(options.stream)) != EOF;) text.push_back(static_cast<char>(c));
  std::fclose(options.stream);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("10/10"), std::string::npos) << text;
  EXPECT_NE(text.find("done"), std::string::npos) << text;
}

TEST(ProgressBar, ResumedPositionCountsRateFromThere) {
  ProgressBarOptions options;
  options.force_tty = 0;
  options.stream = std::tmpfile();
  ProgressBar bar(1000, options);
  bar.set_position(900);
  bar.update(10);
  const std::string line = bar.render(2.0, 100);
  EXPECT_NE(line.find("910/1000"), std::string::npos) << line;
  EXPECT_NE(line.find("5.0 it/s"), std::string::npos) << line;
  std::fclose(options.stream);
}

}  // namespace
}  // namespace lf
