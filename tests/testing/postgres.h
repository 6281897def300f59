// A throw-away PostgreSQL cluster for tests: Debian's initdb and pg_ctl
// (/usr/lib/postgresql/15/bin) on a fresh temporary directory, listening on a
// Unix socket in that directory only (no TCP port), trust authentication for
// its one superuser. Run as the `postgres` user when the test runs as root
// (the server refuses root). Stopped and removed by the destructor.
#ifndef ERASER_TESTS_TESTING_POSTGRES_H_
#define ERASER_TESTS_TESTING_POSTGRES_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "testing/temp_dir.h"

namespace eraser::testing {

class PostgresCluster {
 public:
  // Creates and starts the cluster; ok() tells whether that worked and
  // error() why not.
  PostgresCluster();
  // A streaming standby of `primary`, copied with pg_basebackup and
  // started; `primary` then waits for it at every commit
  // (synchronous_standby_names, set on the primary only, so that a
  // promoted standby does not wait for a standby of its own). Returns once
  // the standby is synchronous; ok() and error() as above.
  static std::unique_ptr<PostgresCluster> StandbyOf(PostgresCluster& primary);
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // A new, empty database; returns its postgresql:// URL ("" on failure,
  // with error() set) and, when `name` is not null, its name.
  std::string NewDatabase(std::string* name = nullptr);
  // The URL of database `name`.
  std::string Url(const std::string& name) const;

  // pg_ctl start / stop -m fast; false (and error()) on failure.
  bool Start();
  bool Stop();
  // SIGKILL of the postmaster (as a crash: the next Start recovers from the
  // write-ahead log). The backends exit once they see it gone.
  bool Kill();
  // The postmaster's pid (0 when not running).
  pid_t ServerPid() const;
  // The cluster's data directory, and that of database `name` (its live
  // relation files, base/<oid>), for searching their bytes.
  std::string DataDir() const { return dir_.Child("data"); }
  // The server's log (every database's).
  std::string LogFile() const { return dir_.Child("server.log"); }
  // The server's socket file (for a proxy in front of it), and its
  // directory (a URL's host).
  std::string SocketPath() const { return dir_.Child(".s.PGSQL.5432"); }
  const std::string& SocketDir() const { return dir_.path(); }
  // pg_ctl promote (a standby becomes a primary); false (and error()) on
  // failure.
  bool Promote();
  std::string DatabaseDir(const std::string& name);
  // Runs SQL through psql on database `name`; returns its output, or ""
  // with error() set.
  std::string Sql(const std::string& name, const std::string& sql);
  // CREATE TABLESPACE `name` in `location`, a new empty directory (made
  // here), handed with every directory above it that others cannot enter
  // to the server's user when we are root.
  // False (and error()) on failure.
  bool CreateTablespace(const std::string& name, const std::string& location);

 private:
  struct NoInit {};
  // The directory, handed to the server's user; no cluster in it yet.
  explicit PostgresCluster(NoInit);
  // Runs a PostgreSQL program (as the cluster's owner); its output goes to
  // `*output` when not null. Returns the exit code.
  int Run(const std::vector<std::string>& argv, std::string* output = nullptr);

  TempDir dir_;
  std::string error_;
  int databases_ = 0;
};

// A cluster shared by the tests of one process, started at first use and
// stopped at exit.
PostgresCluster& SharedPostgres();

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_POSTGRES_H_
