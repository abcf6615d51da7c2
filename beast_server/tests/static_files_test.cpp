// The IDE's file table: decisions as table tests, and loading from real directories with the
// things that must not be served (symlinks out, hidden files, odd names, oversized trees).
#include "beast_server/static_files.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace pysandbox::beast_server {
namespace {

namespace fs = std::filesystem;

TEST(StaticFiles, ContentTypes) {
  struct Case {
    const char* name;
    const char* type;  // nullptr: not served
  } cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"index-C1x.js", "text/javascript; charset=utf-8"},
      {"index-C1x.css", "text/css; charset=utf-8"},
      {"favicon.svg", "image/svg+xml"},
      {"a.json", "application/json"},
      {"a.woff2", "font/woff2"},
      {"secret.py", nullptr},
      {"default.policy", nullptr},
      {".js", nullptr},
      {"noextension", nullptr},
      {"a.js.gz", nullptr},
  };
  for (const auto& c : cases) {
    const auto type = static_content_type(c.name);
    if (c.type == nullptr) {
      EXPECT_FALSE(type) << c.name;
    } else {
      ASSERT_TRUE(type) << c.name;
      EXPECT_EQ(*type, c.type) << c.name;
    }
  }
}

TEST(StaticFiles, HashedAssetsAreImmutableEverythingElseRevalidates) {
  EXPECT_EQ(static_cache_control("/assets/index-C1xkwn3t.js"),
            "public, max-age=31536000, immutable");
  EXPECT_EQ(static_cache_control("/index.html"), "no-cache");
  EXPECT_EQ(static_cache_control("/favicon.svg"), "no-cache");
  EXPECT_EQ(static_cache_control("/assetsx/a.js"), "no-cache");
}

TEST(StaticFiles, ServableRelativePaths) {
  for (const char* good : {"index.html", "assets/index-C1x_y.js", "a/b/c.css"}) {
    EXPECT_TRUE(is_servable_relative_path(good)) << good;
  }
  for (const char* bad : {"", "..", "../etc/passwd", "assets/../index.html", "assets/./a.js",
                          ".hidden", "assets/.a.js", "/etc/passwd", "assets//a.js", "assets/",
                          "%2e%2e/etc/passwd", "assets/%2e%2e/x.js", "a\\b.js", "a b.js"}) {
    EXPECT_FALSE(is_servable_relative_path(bad)) << bad;
  }
  EXPECT_FALSE(is_servable_relative_path(std::string_view("a\0b.js", 6)));
}

TEST(StaticFiles, AcceptsGzip) {
  for (const char* yes : {"gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "GZIP", "*",
                          "x-gzip", "deflate, gzip;q=0.001"}) {
    EXPECT_TRUE(accepts_gzip(yes)) << yes;
  }
  for (const char* no : {"", "identity", "br, deflate", "gzip;q=0", "gzip; q=0.000", "gzipx"}) {
    EXPECT_FALSE(accepts_gzip(no)) << no;
  }
}

class StaticDir : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("pysandbox-static-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "web" / "assets");
    outside_ = root_ / "outside.txt";
    write(outside_, "secret outside the web directory");
  }
  void TearDown() override { fs::remove_all(root_); }

  static void write(const fs::path& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  }
  fs::path web() const { return root_ / "web"; }

  fs::path root_;
  fs::path outside_;
};

TEST_F(StaticDir, LoadsTheBuildAndMapsSlashToIndex) {
  write(web() / "index.html", "<!doctype html>");
  write(web() / "assets" / "index-abc.js", "console.log(1)");
  write(web() / "assets" / "index-abc.js.gz", "GZ");
  write(web() / "favicon.svg", "<svg/>");
  const auto files = StaticFiles::load(web());
  EXPECT_TRUE(files.problem().empty()) << files.problem();
  EXPECT_EQ(files.file_count(), 3u);
  ASSERT_NE(files.find("/"), nullptr);
  EXPECT_EQ(files.find("/")->body, "<!doctype html>");
  EXPECT_EQ(files.find("/index.html"), files.find("/"));
  const auto* js = files.find("/assets/index-abc.js");
  ASSERT_NE(js, nullptr);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js->cache_control, "public, max-age=31536000, immutable");
  EXPECT_EQ(js->gzip_body, "GZ");
  EXPECT_EQ(files.find("/assets/index-abc.js.gz"), nullptr);  // only as the twin
  EXPECT_EQ(files.find("/favicon.svg")->gzip_body, "");
}

TEST_F(StaticDir, NothingOutsideOrHiddenOrSymlinkedIsReachable) {
  write(web() / "index.html", "index");
  write(web() / ".env", "hidden");
  write(web() / "notes.py", "not a web type");
  fs::create_symlink(outside_, web() / "leak.txt");
  fs::create_symlink(outside_, web() / "assets" / "leak.js");
  fs::create_symlink(root_, web() / "up");  // a directory symlink pointing up
  fs::create_symlink("/etc", web() / "etc");
  fs::create_directories(web() / ".git");
  write(web() / ".git" / "config.txt", "hidden dir");
  const auto files = StaticFiles::load(web());
  EXPECT_EQ(files.file_count(), 1u);
  for (const char* path :
       {"/leak.txt", "/assets/leak.js", "/up/outside.txt", "/etc/passwd", "/.env", "/notes.py",
        "/.git/config.txt", "/../outside.txt", "/assets/../index.html", "/%2e%2e/outside.txt",
        "//etc/passwd", "/web/index.html", "index.html", "/index.html/", "/./index.html",
        "/up/web/index.html"}) {
    EXPECT_EQ(files.find(path), nullptr) << path;
  }
  EXPECT_NE(files.find("/index.html"), nullptr);
}

TEST_F(StaticDir, MissingDirectoryOrIndexIsReported) {
  const auto none = StaticFiles::load(root_ / "does-not-exist");
  EXPECT_FALSE(none.has_index());
  EXPECT_NE(none.problem().find("not installed"), std::string::npos) << none.problem();

  write(web() / "assets" / "a.js", "x");
  const auto no_index = StaticFiles::load(web());
  EXPECT_FALSE(no_index.has_index());
  EXPECT_NE(no_index.problem().find("no index.html"), std::string::npos) << no_index.problem();
}

TEST_F(StaticDir, ATreePastItsBoundsIsRefusedWhole) {
  write(web() / "index.html", "index");
  write(web() / "assets" / "big.js", std::string(4096, 'x'));
  StaticLimits limits;
  limits.max_file_bytes = 1024;
  const auto big = StaticFiles::load(web(), limits);
  EXPECT_EQ(big.file_count(), 0u);
  EXPECT_NE(big.problem().find("larger than"), std::string::npos) << big.problem();

  limits = StaticLimits{};
  limits.max_total_bytes = 2048;
  EXPECT_EQ(StaticFiles::load(web(), limits).file_count(), 0u);

  limits = StaticLimits{};
  limits.max_files = 1;
  EXPECT_EQ(StaticFiles::load(web(), limits).file_count(), 0u);

  EXPECT_EQ(StaticFiles::load(web()).file_count(), 2u);
}

TEST_F(StaticDir, DepthIsBounded) {
  write(web() / "index.html", "index");
  fs::path deep = web();
  for (int i = 0; i < 6; ++i) deep /= "d";
  fs::create_directories(deep);
  write(deep / "x.js", "x");
  const auto files = StaticFiles::load(web());
  EXPECT_EQ(files.file_count(), 1u);
}

}  // namespace
}  // namespace pysandbox::beast_server
