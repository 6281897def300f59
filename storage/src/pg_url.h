// PostgreSQL connection URLs (postgresql://user:password@hosts/database?k=v)
// as libpq 15 reads them (conninfo_uri_parse_options in fe-connect.c): the
// user information ends at the first '@' before the first '/', a '?' does
// not end it; the user name ends at ':' or '@'; hosts are separated by ','
// and one starting with '[' runs to the next ']' whatever it holds; the
// database runs from the '/' after the hosts to the '?'; parameters are
// k=v separated by '&'; every part is percent-decoded; a parameter
// overrides the same keyword from elsewhere in the URL.
//
// A password holding a raw '@', '/', '?' or '&' is cut by those rules and
// read in part as a host, a port, a database, a parameter or a user, which
// libpq's messages and ours would print, and to which libpq may connect. A
// URL where the syntax shows that may have happened is refused (CheckUrl)
// and never printed (RedactUrl); a password parameter cut at '&' before a
// keyword libpq knows (password=s3&host=h) reads as two parameters and
// cannot be told.
#ifndef ERASER_STORAGE_PG_URL_H_
#define ERASER_STORAGE_PG_URL_H_

#include <string>

#include "eraser/common/status.h"
#include "eraser/common/statusor.h"

namespace eraser::storage::internal {

// Whether `path` names a PostgreSQL database rather than a directory: it
// starts postgresql:// or postgres://, in any case.
bool IsPostgresUrl(const std::string& path);

// `url` with any password replaced by "***", for messages; only its scheme
// and "***" where a password's end is uncertain (a raw '@' after the user
// information, a raw '?' in it, a bracketed host without its ']' or
// holding a '?': the shapes CheckUrl refuses for it).
std::string RedactUrl(const std::string& url);

// kInvalidArgument, with libpq's reason, when libpq does not accept `url`
// (its syntax, or a parameter it does not know); without repeating the URL
// when its scheme is not in lower case or a password's end is uncertain
// (RedactUrl's shapes), and with neither the URL nor libpq's reason when
// libpq refuses a URL with a password parameter (cut at a raw '&'). It
// connects to nothing; values are checked only when connecting.
Status CheckUrl(const std::string& url);

// postgresql://hosts/DATABASE?params: the parts before and after the
// database name, and the name (percent-decoded, as libpq reads it).
struct SplitUrl {
  std::string before, database, after;
};

// `url` split, when CheckUrl accepts it and it names its database in its
// path only (libpq reads a dbname parameter over the path: a copy's URL
// made from the path would open the original); kInvalidArgument otherwise.
StatusOr<SplitUrl> Split(const std::string& url);

// `text` percent-encoded but for RFC 3986's unreserved characters.
std::string PercentEncoded(const std::string& text);

}  // namespace eraser::storage::internal

#endif  // ERASER_STORAGE_PG_URL_H_
