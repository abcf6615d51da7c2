// The fuzz target's checks (fuzz/http_request_harness.hpp) over its seed corpus, in the normal
// build: every seed, and every input the fuzzer once found and that was added there, must pass.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "fuzz/http_request_harness.hpp"

namespace pysandbox::beast_server {
namespace {

std::string check(const std::string& bytes) {
  return fuzz::check_http_request(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                  bytes.size());
}

TEST(FuzzCorpus, EverySeedPasses) {
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PYSANDBOX_FUZZ_CORPUS_DIR)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(check(bytes), "") << entry.path();
    ++seeds;
  }
  EXPECT_GE(seeds, 20);
}

// A few thousand mutations of the seeds, deterministic: a smoke run of what the fuzzer does at
// length (fuzz/run.sh).
TEST(FuzzCorpus, MutatedSeedsPass) {
  std::vector<std::string> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(PYSANDBOX_FUZZ_CORPUS_DIR)) {
    std::ifstream in(entry.path(), std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_FALSE(seeds.empty());
  std::mt19937 random(11);
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = seeds[random() % seeds.size()];
    const int edits = 1 + static_cast<int>(random() % 8);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const std::size_t at = random() % bytes.size();
      switch (random() % 3) {
        case 0:
          bytes[at] = static_cast<char>(random() % 256);
          break;
        case 1:
          bytes.erase(at, 1 + random() % 4);
          break;
        default:
          bytes.insert(at, 1, static_cast<char>(random() % 256));
          break;
      }
    }
    ASSERT_EQ(check(bytes), "") << ::testing::PrintToString(bytes);
  }
}

}  // namespace
}  // namespace pysandbox::beast_server
