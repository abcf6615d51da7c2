#include "beast_server/static_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/beast/core/string.hpp>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

namespace pysandbox::beast_server {

namespace {

constexpr std::string_view kGzipSuffix = ".gz";

struct Fd {
  int fd = -1;
  explicit Fd(int value) : fd(value) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

std::string errno_text(int error) { return std::strerror(error); }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool is_safe_segment(std::string_view segment) {
  if (segment.empty() || segment.front() == '.' || segment.size() > 255) return false;
  return std::all_of(segment.begin(), segment.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

// Reads a regular file relative to an open directory without following a symlink at its last
// component (the directories above were opened the same way).
std::string read_regular(int dir_fd, const char* name, std::size_t max_bytes,
                         const std::string& shown) {
  Fd fd(::openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.fd < 0) throw std::runtime_error("cannot open " + shown + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    throw std::runtime_error(shown + " is not a regular file");
  }
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    throw std::runtime_error(shown + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::read(fd.fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("cannot read " + shown + ": " + errno_text(errno));
    if (n == 0) break;  // shrank while we read: keep what is there
    done += static_cast<std::size_t>(n);
  }
  data.resize(done);
  return data;
}

struct Loader {
  const StaticLimits& limits;
  std::map<std::string, StaticFile, std::less<>>& files;
  std::map<std::string, std::string, std::less<>> gzipped;  // url path of the original -> data
  std::size_t total = 0;
  std::size_t count = 0;

  void add_bytes(std::size_t n, const std::string& shown) {
    total += n;
    ++count;
    if (total > limits.max_total_bytes || count > limits.max_files) {
      throw std::runtime_error(
          "the web directory holds more than " + std::to_string(limits.max_files) + " files or " +
          std::to_string(limits.max_total_bytes) + " bytes (at " + shown + ")");
    }
  }

  void walk(int dir_fd, const std::string& url_prefix, int depth) {
    const int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) throw std::runtime_error("dup: " + errno_text(errno));
    std::unique_ptr<DIR, DirCloser> dir(::fdopendir(dup_fd));
    if (!dir) {
      ::close(dup_fd);
      throw std::runtime_error("cannot list " + url_prefix + ": " + errno_text(errno));
    }
    // Names first, then work: the loader opens more directories while it walks.
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir.get())) names.emplace_back(entry->d_name);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (!is_safe_segment(name)) continue;  // ., .., hidden files, odd names
      const std::string url = url_prefix + "/" + name;
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        if (depth >= limits.max_depth) continue;
        Fd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
        if (sub.fd < 0) continue;
        walk(sub.fd, url, depth + 1);
        continue;
      }
      if (!S_ISREG(st.st_mode)) continue;  // symlinks, fifos, devices: never served
      const std::string_view view(name);
      if (view.ends_with(kGzipSuffix)) {
        const std::string original = url.substr(0, url.size() - kGzipSuffix.size());
        if (!static_content_type(original)) continue;
        std::string data = read_regular(dir_fd, name.c_str(), limits.max_file_bytes, url);
        add_bytes(data.size(), url);
        gzipped[original] = std::move(data);
        continue;
      }
      const auto type = static_content_type(name);
      if (!type) continue;
      StaticFile file;
      file.body = read_regular(dir_fd, name.c_str(), limits.max_file_bytes, url);
      add_bytes(file.body.size(), url);
      file.content_type = *type;
      file.cache_control = static_cache_control(url);
      files[url] = std::move(file);
    }
  }
};

}  // namespace

std::optional<std::string_view> static_content_type(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kTypes{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".webp", "image/webp"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
  }};
  for (const auto& [extension, type] : kTypes) {
    if (name.size() > extension.size() && name.ends_with(extension)) return type;
  }
  return std::nullopt;
}

std::string_view static_cache_control(std::string_view url_path) {
  if (url_path.starts_with("/assets/")) return "public, max-age=31536000, immutable";
  return "no-cache";
}

bool is_servable_relative_path(std::string_view relative) {
  if (relative.empty()) return false;
  while (!relative.empty()) {
    const auto slash = relative.find('/');
    if (!is_safe_segment(relative.substr(0, slash))) return false;
    if (slash == std::string_view::npos) break;
    relative.remove_prefix(slash + 1);
    if (relative.empty()) return false;  // trailing slash
  }
  return true;
}

bool accepts_gzip(std::string_view accept_encoding) {
  while (!accept_encoding.empty()) {
    const auto comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    const auto semicolon = item.find(';');
    const std::string_view coding = trim(item.substr(0, semicolon));
    if (!boost::beast::iequals(coding, "gzip") && !boost::beast::iequals(coding, "x-gzip") &&
        coding != "*") {
      continue;
    }
    if (semicolon == std::string_view::npos) return true;
    // Parameters: only q matters; q=0 (0, 0.0, 0.00, 0.000) refuses the coding.
    std::string_view params = trim(item.substr(semicolon + 1));
    if (!(params.starts_with("q=") || params.starts_with("Q="))) return true;
    const std::string_view q = trim(params.substr(2));
    const bool zero =
        !q.empty() && q.front() == '0' &&
        std::all_of(q.begin() + 1, q.end(), [](char c) { return c == '.' || c == '0'; });
    return !zero;
  }
  return false;
}

std::filesystem::path web_root(const std::string& data_dir) {
  if (!data_dir.empty()) return std::filesystem::path(data_dir) / "web";
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/local/share/pysandbox/web";
  return exe.parent_path().parent_path() / "share" / "pysandbox" / "web";
}

StaticFiles StaticFiles::load(const std::filesystem::path& root, const StaticLimits& limits) {
  StaticFiles table;
  Fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0) {
    table.problem_ =
        "the web IDE is not installed (" + root.string() + ": " + errno_text(errno) + ")";
    return table;
  }
  Loader loader{limits, table.files_};
  try {
    loader.walk(dir.fd, "", 1);
  } catch (const std::exception& e) {
    // Half a build is worse than none: serve nothing and say why.
    table.files_.clear();
    table.problem_ = "the web IDE was not loaded: " + std::string(e.what());
    return table;
  }
  for (auto& [url, data] : loader.gzipped) {
    auto it = table.files_.find(url);
    if (it != table.files_.end()) it->second.gzip_body = std::move(data);
  }
  table.total_bytes_ = loader.total;
  if (!table.has_index()) {
    table.problem_ = "the web IDE is not installed (" + root.string() + " has no index.html)";
  }
  return table;
}

const StaticFile* StaticFiles::find(std::string_view url_path) const {
  if (url_path == "/") url_path = "/index.html";
  // Only names the loader could have produced can match; anything else is not looked up.
  if (!url_path.starts_with('/') || !is_servable_relative_path(url_path.substr(1))) {
    return nullptr;
  }
  const auto it = files_.find(url_path);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace pysandbox::beast_server
