// The log's line format, header-only and async-signal-safe: no allocation, no locks, no locale;
// a fixed buffer and one write(2). For code that cannot link base/log.cpp or may run where
// malloc is unsafe (the zygote module inside Python, a child between fork and exec). Lines:
// {"ts": RFC 3339 UTC with milliseconds, "event", "component", ...fields}. Strings are escaped
// as JSON requires; a byte that does not start well-formed UTF-8 becomes U+FFFD, so the line is
// always valid JSON.
#pragma once

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pysandbox::base {

// Length of a timestamp as format_timestamp_to writes it for years 0..9999:
// "2024-05-01T12:00:00.123Z".
inline constexpr std::size_t kTimestampSize = 24;

namespace json_line_detail {

// Days since 1970-01-01 to a civil date (proleptic Gregorian): H. Hinnant's days_from_civil
// inverse. Arithmetic only, unlike gmtime_r (which may take the time zone lock).
constexpr void civil_from_days(std::int64_t days, std::int64_t& year, unsigned& month,
                               unsigned& day) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  day = doy - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
}

constexpr char* put_digits(char* out, std::uint64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out + width;
}

// Length of the well-formed UTF-8 sequence at the start of `text` (RFC 3629: no overlong forms,
// no surrogates, nothing past U+10FFFF), or 0 if the first byte does not start one.
constexpr std::size_t utf8_sequence(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // bounds of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) low = 0xA0;
    if (b0 == 0xED) high = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) low = 0x90;
    if (b0 == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

}  // namespace json_line_detail

// "YYYY-MM-DDTHH:MM:SS.mmmZ" for `ms` milliseconds since the epoch into `out` (at least
// kTimestampSize bytes); returns the end. Years past 9999 are clamped to 9999.
constexpr char* format_timestamp_to(char* out, std::int64_t ms) {
  std::int64_t seconds = ms / 1000;
  std::int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  std::int64_t days = seconds / 86400;
  std::int64_t second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    days -= 1;
  }
  std::int64_t year = 0;
  unsigned month = 0, day = 0;
  json_line_detail::civil_from_days(days, year, month, day);
  if (year < 0) year = 0;
  if (year > 9999) year = 9999;
  using json_line_detail::put_digits;
  out = put_digits(out, static_cast<std::uint64_t>(year), 4);
  *out++ = '-';
  out = put_digits(out, month, 2);
  *out++ = '-';
  out = put_digits(out, day, 2);
  *out++ = 'T';
  out = put_digits(out, static_cast<std::uint64_t>(second_of_day / 3600), 2);
  *out++ = ':';
  out = put_digits(out, static_cast<std::uint64_t>(second_of_day / 60 % 60), 2);
  *out++ = ':';
  out = put_digits(out, static_cast<std::uint64_t>(second_of_day % 60), 2);
  *out++ = '.';
  out = put_digits(out, static_cast<std::uint64_t>(millis), 3);
  *out++ = 'Z';
  return out;
}

// Calls `append(std::string_view piece)` with `text` as the inside of a JSON string (without
// the quotes), piece by piece; stops early when `append` returns false. Escapes as Boost.JSON
// does ('"', '\\', \b \f \n \r \t, other control characters as \u00XX); each byte that does not
// start well-formed UTF-8 becomes U+FFFD.
template <class Append>
constexpr void escape_json_string(std::string_view text, Append&& append) {
  constexpr char kHex[] = "0123456789abcdef";
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = json_line_detail::utf8_sequence(text.substr(i));
      if (length == 0) {
        if (!append(std::string_view("\xEF\xBF\xBD"))) return;
        ++i;
      } else {
        if (!append(text.substr(i, length))) return;
        i += length;
      }
      continue;
    }
    std::string_view piece;
    char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
    switch (c) {
      case '"':
        piece = "\\\"";
        break;
      case '\\':
        piece = "\\\\";
        break;
      case '\b':
        piece = "\\b";
        break;
      case '\f':
        piece = "\\f";
        break;
      case '\n':
        piece = "\\n";
        break;
      case '\r':
        piece = "\\r";
        break;
      case '\t':
        piece = "\\t";
        break;
      default:
        piece = c < 0x20 ? std::string_view(escaped, 6) : text.substr(i, 1);
        break;
    }
    if (!append(piece)) return;
    ++i;
  }
}

// One log line built in a fixed buffer. A line that would not fit is cut inside the string that
// overflows (at a character boundary) and later fields are dropped, but it stays one valid JSON
// object: room for the closing characters is always kept.
class JsonLine {
 public:
  static constexpr std::size_t kCapacity = 2048;

  // Stamped with the current time (CLOCK_REALTIME).
  JsonLine(std::string_view event, std::string_view component) {
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const std::int64_t ms = static_cast<std::int64_t>(now.tv_sec) * 1000 +
                            static_cast<std::int64_t>(now.tv_nsec) / 1000000;
    raw("{\"ts\":\"");
    char ts[kTimestampSize + 8];
    const char* end = format_timestamp_to(ts, ms);
    raw(std::string_view(ts, static_cast<std::size_t>(end - ts)));
    raw("\"");
    field("event", event);
    field("component", component);
  }

  JsonLine& field(std::string_view key, std::string_view value) {
    if (begin_field(key)) string_(value);
    return *this;
  }
  JsonLine& field(std::string_view key, const char* value) {
    return field(key, std::string_view(value != nullptr ? value : ""));
  }
  JsonLine& field(std::string_view key, std::int64_t value) {
    const std::size_t mark = size_;
    if (!begin_field(key)) return *this;
    char digits[24];
    char* end = digits + sizeof digits;
    char* p = end;
    const bool negative = value < 0;
    // Through unsigned: negating INT64_MIN is undefined.
    std::uint64_t magnitude =
        negative ? ~static_cast<std::uint64_t>(value) + 1 : static_cast<std::uint64_t>(value);
    do {
      *--p = static_cast<char>('0' + magnitude % 10);
      magnitude /= 10;
    } while (magnitude != 0);
    if (negative) *--p = '-';
    if (!raw(std::string_view(p, static_cast<std::size_t>(end - p)))) size_ = mark;
    return *this;
  }
  JsonLine& field(std::string_view key, int value) {
    return field(key, static_cast<std::int64_t>(value));
  }
  JsonLine& field(std::string_view key, bool value) {
    const std::size_t mark = size_;
    if (begin_field(key) && !raw(value ? "true" : "false")) size_ = mark;
    return *this;
  }

  // The finished line, with its newline.
  std::string_view text() {
    if (!closed_) {
      buffer_[size_++] = '}';
      buffer_[size_++] = '\n';
      closed_ = true;
    }
    return std::string_view(buffer_, size_);
  }

  // Writes the line to `fd` in one write(2) (repeated only if the kernel took part of it).
  void write(int fd = STDERR_FILENO) {
    const std::string_view line = text();
    std::size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  // Kept free for the end of a cut string and the line's end: '"', '}', '\n'.
  static constexpr std::size_t kReserve = 4;

  // Appends `piece` if it fits before the reserve; otherwise marks the line full.
  bool raw(std::string_view piece) {
    if (full_ || size_ + piece.size() > kCapacity - kReserve) {
      full_ = true;
      return false;
    }
    for (const char c : piece) buffer_[size_++] = c;
    return true;
  }
  // `,"key":`, or nothing (and false) if that does not fit whole.
  bool begin_field(std::string_view key) {
    if (full_) return false;
    const std::size_t mark = size_;
    raw(",");
    string_(key);
    raw(":");
    if (full_) size_ = mark;
    return !full_;
  }
  void string_(std::string_view value) {
    if (full_) return;
    buffer_[size_++] = '"';  // the reserve covers it
    escape_json_string(value, [this](std::string_view piece) { return raw(piece); });
    buffer_[size_++] = '"';
  }

  char buffer_[kCapacity];
  std::size_t size_ = 0;
  bool full_ = false;
  bool closed_ = false;
};

}  // namespace pysandbox::base
