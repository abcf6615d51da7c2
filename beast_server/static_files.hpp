// The web IDE's built files (index.html, hashed assets/*), read once at startup from a
// directory and served from memory. A request path is only ever looked up in the table of what
// was loaded, never joined onto the filesystem, so no path (.., %2e%2e, absolute, symlinked)
// can reach a file outside the directory; symlinks and hidden or oddly named entries inside it
// are not loaded at all.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pysandbox::beast_server {

struct StaticFile {
  std::string body;
  // The precompressed twin (name.gz beside the file, written by the build), or empty.
  std::string gzip_body;
  std::string_view content_type;
  std::string_view cache_control;
};

struct StaticLimits {
  std::size_t max_files = 256;
  std::size_t max_file_bytes = 8u << 20;
  std::size_t max_total_bytes = 32u << 20;
  int max_depth = 4;
};

class StaticFiles {
 public:
  StaticFiles() = default;

  // Reads every servable file under `root`. Never throws: a missing root, or a directory past
  // a limit (which means a wrong directory), gives an empty table and problem() says why.
  static StaticFiles load(const std::filesystem::path& root, const StaticLimits& limits = {});

  // The file for a URL path ("/" is "/index.html"); nullptr for anything else.
  const StaticFile* find(std::string_view url_path) const;

  bool has_index() const { return files_.contains("/index.html"); }
  std::size_t file_count() const { return files_.size(); }
  std::size_t total_bytes() const { return total_bytes_; }
  // Why the table is empty or incomplete, for the startup log; empty when all is well.
  const std::string& problem() const { return problem_; }

 private:
  std::map<std::string, StaticFile, std::less<>> files_;
  std::size_t total_bytes_ = 0;
  std::string problem_;
};

// Decisions, kept pure for table tests.
// The Content-Type of a file name, or nullopt for a type the IDE never ships (not served).
std::optional<std::string_view> static_content_type(std::string_view name);
// Vite puts a content hash in every name under /assets/: those never change and may be cached
// for good; anything else (index.html) must be revalidated, so a new build shows at once.
std::string_view static_cache_control(std::string_view url_path);
// A relative path made only of segments [A-Za-z0-9_.-]+ that do not start with '.'.
bool is_servable_relative_path(std::string_view relative);
// Whether an Accept-Encoding header value admits gzip (q=0 refuses it).
bool accepts_gzip(std::string_view accept_encoding);

// Where the IDE is installed: <data_dir>/web, data_dir defaulting as the executor's does to
// <directory of the executable>/../share/pysandbox.
std::filesystem::path web_root(const std::string& data_dir);

}  // namespace pysandbox::beast_server
