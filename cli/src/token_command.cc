// `eraser token`: makes a bearer token for `eraser serve --auth-file`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "command.h"
#include "eraser/serve/auth.h"

namespace po = boost::program_options;

namespace eraser::cli {
namespace {

constexpr char kUsage[] =
    "Usage: eraser token --scopes SCOPES [--name NAME] [--auth-file FILE]\n"
    "Makes a new random bearer token with SCOPES, comma-separated: infer,\n"
    "delete (any sample or owner), delete:owner:<id> (that owner only) and\n"
    "admin (drain, certificate details, everything). Prints the token once,\n"
    "on stdout: it is stored nowhere in plain text. With --auth-file, the\n"
    "token's hashed line is appended to FILE (created with mode 0600);\n"
    "otherwise the line to add is printed on stderr. Send SIGHUP to a\n"
    "running `eraser serve` to load it.";

}  // namespace

int RunToken(int argc, char** argv) {
  std::string scopes, name, auth_file;
  po::options_description options("Options");
  options.add_options()("scopes", po::value(&scopes)->required(),
                        "comma-separated scopes (required)")(
      "name", po::value(&name),
      "a name for logs (letters, digits, '-', '_', '.', '@')")(
      "auth-file", po::value(&auth_file), "append the hashed line here");
  po::variables_map vm;
  bool help = false;
  if (int rc = ParseCommandLine(argc, argv, kUsage, options, vm, &help);
      rc != kExitOk || help) {
    return rc;
  }
  StatusOr<serve::Principal> principal = serve::ParseScopes(scopes);
  if (!principal.ok()) return ReportError("token", principal.status());
  if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
                             "WXYZ0123456789-_.@") != std::string::npos) {
    return ReportError(
        "token", InvalidArgumentError("--name may hold letters, digits and "
                                      "'-', '_', '.', '@' only"));
  }
  StatusOr<std::string> token = serve::NewToken();
  if (!token.ok()) return ReportError("token", token.status());
  std::string line = serve::HashToken(*token) + " " + scopes;
  if (!name.empty()) line += " " + name;
  line += "\n";
  if (!auth_file.empty()) {
    const int fd = open(auth_file.c_str(),
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line.data(), line.size()) !=
                      static_cast<ssize_t>(line.size())) {
      if (fd >= 0) close(fd);
      return ReportError("token",
                         UnavailableError("cannot append to " + auth_file));
    }
    close(fd);
  } else {
    std::fprintf(stderr, "add this line to the token file:\n%s", line.c_str());
  }
  std::printf("%s\n", token->c_str());
  return kExitOk;
}

}  // namespace eraser::cli
