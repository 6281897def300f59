// PostgreSQL connection URLs as libpq reads them (pg_url.h).
#include "pg_url.h"

#include <libpq-fe.h>

#include <functional>
#include <string_view>

#include "eraser/common/ascii.h"
#include "eraser/storage/store.h"

namespace eraser::storage::internal {
namespace {

constexpr std::string_view kSchemes[] = {"postgresql://", "postgres://"};

// Whether `url` starts with a scheme of libpq's as libpq spells it (lower
// case only).
bool HasLibpqScheme(const std::string& url) {
  for (const std::string_view scheme : kSchemes) {
    if (url.compare(0, scheme.size(), scheme) == 0) return true;
  }
  return false;
}

// Where libpq's parts of a URL lie.
struct Layout {
  std::size_t start = 0;                          // after "://"
  std::size_t user_info_end = std::string::npos;  // its '@'
  // The '/' or '?' that ends the hosts, or the URL's size.
  std::size_t hosts_end = 0;
  std::size_t query = std::string::npos;  // its '?'
  // Whether a password's end is uncertain: libpq may have read part of it
  // as something else, which messages would then print.
  bool ambiguous = false;
};

// `url`'s layout; `start` is where its authority starts (after "://").
Layout Read(const std::string& url, std::size_t start) {
  Layout l;
  l.start = start;
  const std::size_t first_at = url.find('@', start);
  if (first_at < url.find('/', start)) l.user_info_end = first_at;
  const std::size_t hosts =
      l.user_info_end == std::string::npos ? start : l.user_info_end + 1;
  // Another raw '@' ends a password holding '@', '/' or '?', cut where its
  // author did not mean.
  const bool stray_at = url.find('@', hosts) != std::string::npos;
  // libpq reads past a raw '?' in the user information, so a query's
  // password may be taken for it and cut (postgresql://db:5432?password=p@ss:
  // password "5432?password=p", host "ss"); that cannot be told from a
  // password holding '?'.
  const bool query_in_user_info = l.user_info_end != std::string::npos &&
                                  url.find('?', start) < l.user_info_end;
  // A bracketed host without its ']', or holding a '?', takes the query
  // into the host name (postgresql://[::1/db?password=p).
  bool odd_brackets = false;
  l.hosts_end = url.size();
  bool host_start = true;
  for (std::size_t i = hosts; i < url.size(); ++i) {
    if (host_start && url[i] == '[') {
      const std::size_t close = url.find(']', i);
      if (close == std::string::npos || url.find('?', i) < close) {
        odd_brackets = true;
        break;
      }
      i = close;
    } else if (url[i] == '/' || url[i] == '?') {
      l.hosts_end = i;
      break;
    }
    host_start = url[i] == ',';
  }
  l.query = url.find('?', l.hosts_end);
  l.ambiguous = stray_at || query_in_user_info || odd_brackets;
  return l;
}

// A part of a URL as libpq reads it: percent-decoded.
std::string PercentDecoded(const std::string& part) {
  std::string out;
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (part[i] == '%' && i + 2 < part.size() && IsAsciiHexDigit(part[i + 1]) &&
        IsAsciiHexDigit(part[i + 2])) {
      out += static_cast<char>(std::stoi(part.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += part[i];
    }
  }
  return out;
}

// Calls `fn` with each parameter of `query` (what follows a URL's '?') and
// its name as libpq reads it (percent-decoded), lowercased to be safe.
void ForEachParameter(const std::string& query,
                      const std::function<void(const std::string& param,
                                               const std::string& key)>& fn) {
  std::size_t pos = 0;
  while (true) {
    std::size_t end = query.find('&', pos);
    const bool last = end == std::string::npos;
    if (last) end = query.size();
    const std::string param = query.substr(pos, end - pos);
    fn(param, AsciiLowercase(PercentDecoded(param.substr(0, param.find('=')))));
    if (last) return;
    pos = end + 1;
  }
}

bool IsPasswordKey(const std::string& key) {
  return key == "password" || key == "sslpassword";
}

// Whether `query` has a parameter whose name `matches`.
bool HasParameter(const std::string& query,
                  const std::function<bool(const std::string&)>& matches) {
  bool found = false;
  ForEachParameter(query, [&](const std::string&, const std::string& key) {
    found = found || matches(key);
  });
  return found;
}

// libpq's verdict on `url` alone: OK with "" when it accepts it, OK with its
// reason when it does not.
StatusOr<std::string> ParseError(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options != nullptr) {
    PQconninfoFree(options);
    return std::string();
  }
  if (error == nullptr) {
    return ResourceExhaustedError("out of memory parsing a PostgreSQL URL");
  }
  std::string why = error;
  PQfreemem(error);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
    why.pop_back();
  }
  return why;
}

}  // namespace

bool IsPostgresUrl(const std::string& path) {
  // Schemes are case-insensitive (RFC 3986), libpq's are not: CheckUrl
  // refuses "PostgreSQL://" rather than it naming a directory.
  return HasLibpqScheme(AsciiLowercase(path.substr(0, kSchemes[0].size())));
}

std::string RedactUrl(const std::string& url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const Layout l = Read(url, scheme + 3);
  if (l.ambiguous) return url.substr(0, l.start) + "***";
  // user:password@: the password is what lies between the first ':' and
  // the user information's '@'.
  std::string out = url.substr(0, l.query);
  const std::size_t colon = out.find(':', l.start);
  if (l.user_info_end != std::string::npos && colon < l.user_info_end) {
    out = out.substr(0, colon + 1) + "***" + out.substr(l.user_info_end);
  }
  if (l.query == std::string::npos) return out;
  // ...?a=b&password=...: the value of every password parameter.
  out += '?';
  ForEachParameter(url.substr(l.query + 1),
                   [&](const std::string& param, const std::string& key) {
                     const std::size_t eq = param.find('=');
                     out += eq != std::string::npos && IsPasswordKey(key)
                                ? param.substr(0, eq + 1) + "***"
                                : param;
                     out += '&';
                   });
  out.pop_back();  // the last '&'
  return out;
}

Status CheckUrl(const std::string& url) {
  if (!HasLibpqScheme(url)) {
    return InvalidArgumentError(
        "a PostgreSQL URL starts postgresql:// or postgres://, in lower case "
        "(libpq reads no other spelling); the URL is not repeated here");
  }
  const Layout l = Read(url, url.find("://") + 3);
  if (l.ambiguous) {
    return InvalidArgumentError(
        "the PostgreSQL URL holds a raw '@' after its user information, a "
        "raw '?' in it, or a bracketed host without its ']' or holding a "
        "'?': percent-encode '@', '/' and '?' in user names, passwords, "
        "database names and parameters (%40, %2F, %3F); the URL is not "
        "repeated here");
  }
  ASSIGN_OR_RETURN(std::string first, ParseError(url));
  if (first.empty()) return OkStatus();
  // A password parameter that libpq refuses may have been cut at a raw '&',
  // the rest read as another parameter that libpq's reason and the URL
  // would show.
  if (l.query != std::string::npos &&
      HasParameter(url.substr(l.query + 1), IsPasswordKey)) {
    return InvalidArgumentError(
        "the PostgreSQL URL is not one libpq accepts; it holds a password "
        "parameter, so neither the URL nor libpq's reason is repeated here "
        "(percent-encode '&' and '=' in a password: %26, %3D)");
  }
  // libpq's message may quote the URL, so it is taken from the URL with its
  // password redacted; when only the password was wrong (a bad
  // percent-encoding), it is not repeated at all.
  const std::string redacted = RedactUrl(url);
  ASSIGN_OR_RETURN(const std::string why, ParseError(redacted));
  return InvalidArgumentError(
      redacted + " is not a URL libpq accepts: " +
      (why.empty() ? "its password is malformed" : why));
}

StatusOr<SplitUrl> Split(const std::string& url) {
  RETURN_IF_ERROR(CheckUrl(url));
  const Layout l = Read(url, url.find("://") + 3);
  // The path starts where the hosts end, with a '/', and ends at the query
  // ('/' in a parameter or a bracketed host is theirs).
  const std::size_t slash = l.hosts_end;
  if (slash == url.size() || url[slash] != '/' || slash + 1 == url.size() ||
      slash + 1 == l.query) {
    return InvalidArgumentError(RedactUrl(url) +
                                " names no database in its path");
  }
  if (l.query != std::string::npos &&
      HasParameter(url.substr(l.query + 1),
                   [](const std::string& key) { return key == "dbname"; })) {
    return InvalidArgumentError(
        RedactUrl(url) +
        " names its database in a dbname parameter, which libpq reads over "
        "the path's: name it in the path only");
  }
  SplitUrl out;
  out.before = url.substr(0, slash + 1);
  out.database = PercentDecoded(url.substr(slash + 1, l.query - slash - 1));
  out.after = l.query == std::string::npos ? "" : url.substr(l.query);
  return out;
}

std::string PercentEncoded(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (IsAsciiAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

}  // namespace eraser::storage::internal

namespace eraser::storage {

StatusOr<std::string> PostgresSiblingUrl(const std::string& url,
                                         const std::string& database) {
  ASSIGN_OR_RETURN(internal::SplitUrl parts, internal::Split(url));
  return parts.before + internal::PercentEncoded(database) + parts.after;
}

}  // namespace eraser::storage
