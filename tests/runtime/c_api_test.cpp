// The C API: status codes and messages instead of exceptions, the same
// results as rt::Model, and runs from several threads on one model.
#include "pactq/runtime/c_api.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "demo_model.h"
#include "pactq/runtime/model.h"

namespace pactq::rt {
namespace {

std::string write_demo(const std::string& name) {
  const std::string path =
      ::testing::TempDir() + "pactq_capi_" + name + "_" + std::to_string(::getpid()) + ".pqm";
  test::demo_model_writer(5).write(path);
  return path;
}

TEST(CApi, VersionIsTheProjectVersion) {
  EXPECT_STREQ(pactq_version(), PACTQ_EXPECTED_VERSION);  // CMake's PROJECT_VERSION
}

TEST(CApi, LoadsQueriesAndRunsLikeTheModel) {
  const std::string path = write_demo("run");
  pactq_model* m = nullptr;
  ASSERT_EQ(pactq_model_load(path.c_str(), &m), PACTQ_OK) << pactq_last_error();
  int c = 0, h = 0, w = 0;
  ASSERT_EQ(pactq_model_input_shape(m, &c, &h, &w), PACTQ_OK);
  EXPECT_EQ(c, 3);
  EXPECT_EQ(h, 8);
  EXPECT_EQ(w, 8);
  ASSERT_EQ(pactq_model_classes(m), 10);
  ASSERT_EQ(pactq_model_class_count(m), 10);
  EXPECT_STREQ(pactq_model_class_name(m, 3), "c3");
  EXPECT_EQ(pactq_model_class_name(m, 10), nullptr);

  std::mt19937 rng(2);
  const int batch = 4;
  const std::vector<float> pixels = test::random_floats(rng, batch * 192, 0.f, 1.f);
  Model model = Model::load(path);
  const std::vector<float> want = model.run(pixels.data(), batch);
  std::vector<float> got(want.size(), -1.f);
  ASSERT_EQ(pactq_model_run(m, nullptr, pixels.data(), batch, got.data()), PACTQ_OK);
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)));

  // Four threads, each with its own context, on the one model.
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      pactq_context* ctx = nullptr;
      if (pactq_context_create(1 + t % 2, &ctx) != PACTQ_OK) {
        bad[t] = 1;
        return;
      }
      std::vector<float> out(want.size());
      for (int r = 0; r < 10; ++r) {
        if (pactq_model_run(m, ctx, pixels.data(), batch, out.data()) != PACTQ_OK ||
            std::memcmp(out.data(), want.data(), want.size() * sizeof(float)) != 0)
          bad[t] = 1;
      }
      pactq_context_free(ctx);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
  pactq_model_free(m);
  std::remove(path.c_str());
}

TEST(CApi, ErrorsAreCodesWithAMessage) {
  pactq_model* m = reinterpret_cast<pactq_model*>(0x1);
  EXPECT_EQ(pactq_model_load("/nonexistent/x.pqm", &m), PACTQ_ERROR_IO);
  EXPECT_EQ(m, nullptr);
  EXPECT_STREQ(pactq_last_error(),
               "/nonexistent/x.pqm: cannot open file: No such file or directory");
  const std::string dir = ::testing::TempDir();
  EXPECT_EQ(pactq_model_load(dir.c_str(), &m), PACTQ_ERROR_IO);
  EXPECT_EQ(std::string(pactq_last_error()), dir + ": cannot read file: Is a directory");

  const std::string path = write_demo("corrupt");
  {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fputs("garbage!", f);  // overwrites the header length
    std::fclose(f);
  }
  EXPECT_EQ(pactq_model_load(path.c_str(), &m), PACTQ_ERROR_FORMAT);
  EXPECT_NE(std::string(pactq_last_error()).find(path), std::string::npos) << pactq_last_error();
  std::remove(path.c_str());

  EXPECT_EQ(pactq_model_load(nullptr, &m), PACTQ_ERROR_INVALID_ARGUMENT);
  pactq_context* ctx = nullptr;
  EXPECT_EQ(pactq_context_create(0, &ctx), PACTQ_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(pactq_last_error()).find("threads"), std::string::npos);

  const std::string good = write_demo("good");
  ASSERT_EQ(pactq_model_load(good.c_str(), &m), PACTQ_OK);
  EXPECT_STREQ(pactq_last_error(), "");
  float x[192] = {0}, y[10];
  EXPECT_EQ(pactq_model_run(m, nullptr, x, 0, y), PACTQ_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pactq_model_run(m, nullptr, nullptr, 1, y), PACTQ_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pactq_model_run(m, nullptr, x, 1, y), PACTQ_OK);
  pactq_model_free(m);
  pactq_model_free(nullptr);
  pactq_context_free(nullptr);
  std::remove(good.c_str());
}

// pactq_last_error() describes the thread's last status call: a failure's
// message until the next call, and "" after any call that succeeded.
TEST(CApi, SuccessClearsTheLastError) {
  const std::string path = write_demo("clear");
  pactq_model* m = nullptr;
  ASSERT_EQ(pactq_model_load(path.c_str(), &m), PACTQ_OK) << pactq_last_error();
  const auto fail_once = [] {
    pactq_context* none = nullptr;
    ASSERT_EQ(pactq_context_create(0, &none), PACTQ_ERROR_INVALID_ARGUMENT);
    ASSERT_STRNE(pactq_last_error(), "");
  };

  fail_once();
  int c = 0, h = 0, w = 0;
  ASSERT_EQ(pactq_model_input_shape(m, &c, &h, &w), PACTQ_OK);
  EXPECT_STREQ(pactq_last_error(), "") << "after pactq_model_input_shape";

  fail_once();
  pactq_context* ctx = nullptr;
  ASSERT_EQ(pactq_context_create(1, &ctx), PACTQ_OK);
  EXPECT_STREQ(pactq_last_error(), "") << "after pactq_context_create";

  fail_once();
  std::vector<float> pixels(192, 0.5f), logits(10);
  ASSERT_EQ(pactq_model_run(m, ctx, pixels.data(), 1, logits.data()), PACTQ_OK);
  EXPECT_STREQ(pactq_last_error(), "") << "after pactq_model_run";

  fail_once();
  pactq_model* again = nullptr;
  ASSERT_EQ(pactq_model_load(path.c_str(), &again), PACTQ_OK);
  EXPECT_STREQ(pactq_last_error(), "") << "after pactq_model_load";

  // The message is per thread: another thread's failure leaves this one's alone.
  std::thread([] {
    pactq_context* none = nullptr;
    (void)pactq_context_create(0, &none);
  }).join();
  EXPECT_STREQ(pactq_last_error(), "");

  pactq_model_free(again);
  pactq_context_free(ctx);
  pactq_model_free(m);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace pactq::rt
