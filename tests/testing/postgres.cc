#include "testing/postgres.h"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "testing/wait.h"

namespace eraser::testing {
namespace {

constexpr char kBin[] = "/usr/lib/postgresql/15/bin/";
constexpr char kUser[] = "eraser";  // the cluster's superuser
constexpr char kPort[] = "5432";    // names the socket file only
// How long pg_ctl waits for a start or stop (its own default is 60 s): a
// bound for a hang, as eraser::testing::kPatience is (testing/wait.h).
constexpr char kPgCtlSeconds[] = "300";

// The system user that runs the server when we are root.
const passwd* ServerUser() {
  return geteuid() == 0 ? getpwnam("postgres") : nullptr;
}

// Running (a zombie, which nobody may reap in a container, is not).
bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const std::size_t end = line.rfind(')');
  return end != std::string::npos && end + 2 < line.size() &&
         line[end + 2] != 'Z' && line[end + 2] != 'X';
}

// Waits for `pid` to exit and collects it: this process is the server's
// subreaper (the constructor), so a killed postmaster and its orphaned
// children become its own; a zombie would keep the lock file "in use".
void Reap(pid_t pid) {
  if (waitpid(pid, nullptr, 0) == pid) return;
  while (Alive(pid)) sched_yield();  // not ours after all
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    const std::size_t end = line.rfind(')');
    if (end == std::string::npos) continue;
    std::istringstream rest(line.substr(end + 2));
    char state = 0;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == parent) {
      out.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return out;
}

}  // namespace

PostgresCluster::PostgresCluster() : PostgresCluster(NoInit{}) {
  if (!ok()) return;
  std::string out;
  if (Run({std::string(kBin) + "initdb", "-D", DataDir(), "-U", kUser,
           "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"},
          &out) != 0) {
    error_ = "initdb failed: " + out;
    return;
  }
  // Only the socket in the temporary directory; small, and every setting
  // that matters for durability at its default (fsync, synchronous_commit,
  // full_page_writes on).
  std::ofstream conf(DataDir() + "/postgresql.conf", std::ios::app);
  conf << "listen_addresses = ''\n"
       << "unix_socket_directories = '" << dir_.path() << "'\n"
       << "port = " << kPort << "\n"
       << "shared_buffers = 32MB\n"
       << "max_connections = 60\n"
       << "logging_collector = off\n";
  conf.close();
  Start();
}

std::unique_ptr<PostgresCluster> PostgresCluster::StandbyOf(
    PostgresCluster& primary) {
  std::unique_ptr<PostgresCluster> standby(new PostgresCluster(NoInit{}));
  if (!standby->ok()) return standby;
  std::string out;
  // -R writes standby.signal and the primary's connection settings.
  if (standby->Run(
          {std::string(kBin) + "pg_basebackup", "-D", standby->DataDir(), "-h",
           primary.SocketDir(), "-p", kPort, "-U", kUser, "-R", "-X", "stream",
           "--no-sync", "--checkpoint=fast"},
          &out) != 0) {
    standby->error_ = "pg_basebackup failed: " + out;
    return standby;
  }
  {
    // The copied settings name the primary's socket directory: its own.
    std::ofstream conf(standby->DataDir() + "/postgresql.conf", std::ios::app);
    conf << "unix_socket_directories = '" << standby->SocketDir() << "'\n";
  }
  if (!standby->Start()) return standby;
  // (ALTER SYSTEM prints nothing: a failure shows in error().)
  primary.error_.clear();
  primary.Sql("postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'");
  if (!primary.ok() ||
      primary.Sql("postgres", "SELECT pg_reload_conf()").empty()) {
    standby->error_ = "cannot make the standby synchronous: " + primary.error();
    return standby;
  }
  const bool synchronous = Eventually(
      [&] {
        return primary
                   .Sql("postgres",
                        "SELECT count(*) FROM pg_stat_replication WHERE "
                        "sync_state = 'sync'")
                   .rfind("1", 0) == 0;
      },
      kPatience, std::chrono::milliseconds(20));
  if (!synchronous) {
    standby->error_ = "the standby never became synchronous";
  }
  return standby;
}

bool PostgresCluster::Promote() {
  std::string out;
  if (Run({std::string(kBin) + "pg_ctl", "-D", DataDir(), "-w", "-t",
           kPgCtlSeconds, "promote"},
          &out) != 0) {
    error_ = "pg_ctl promote failed: " + out;
    return false;
  }
  return true;
}

PostgresCluster::PostgresCluster(NoInit) {
  // pg_ctl starts the postmaster in the background and exits: the server
  // is reparented to this process instead of to init, which in a container
  // may never collect it.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (access((std::string(kBin) + "initdb").c_str(), X_OK) != 0) {
    error_ = std::string(kBin) +
             "initdb is missing: install postgresql (scripts/setup does)";
    return;
  }
  if (geteuid() == 0) {
    const passwd* pw = ServerUser();
    if (pw == nullptr) {
      error_ =
          "running as root and there is no postgres user to run the "
          "server as (install postgresql)";
      return;
    }
    if (chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      error_ = "cannot hand " + dir_.path() + " to the postgres user";
      return;
    }
  }
}

PostgresCluster::~PostgresCluster() {
  const pid_t pid = ServerPid();
  if (pid != 0) {
    Run({std::string(kBin) + "pg_ctl", "-D", DataDir(), "-m", "immediate", "-w",
         "-t", kPgCtlSeconds, "stop"});
    Reap(pid);
  }
}

int PostgresCluster::Run(const std::vector<std::string>& argv,
                         std::string* output) {
  const std::string log = dir_.Child("command.log");
  const passwd* pw = ServerUser();
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    if (pw != nullptr) {
      if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(126);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  if (output != nullptr) {
    std::ifstream in(log);
    output->assign(std::istreambuf_iterator<char>(in),
                   std::istreambuf_iterator<char>());
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool PostgresCluster::Start() {
  std::string out;
  // The server's log goes to a file in the directory; pg_ctl -w waits
  // until it accepts connections.
  if (Run({std::string(kBin) + "pg_ctl", "-D", DataDir(), "-l",
           dir_.Child("server.log"), "-w", "-t", kPgCtlSeconds, "start"},
          &out) != 0) {
    error_ =
        "pg_ctl start failed: " + out + ReadFileOrDie(dir_.Child("server.log"));
    return false;
  }
  return true;
}

bool PostgresCluster::Stop() {
  const pid_t pid = ServerPid();
  std::string out;
  if (Run({std::string(kBin) + "pg_ctl", "-D", DataDir(), "-m", "fast", "-w",
           "-t", kPgCtlSeconds, "stop"},
          &out) != 0) {
    error_ = "pg_ctl stop failed: " + out;
    return false;
  }
  if (pid != 0) Reap(pid);
  return true;
}

bool PostgresCluster::Kill() {
  const pid_t pid = ServerPid();
  if (pid == 0) {
    error_ = "no server to kill";
    return false;
  }
  // The whole server at once, as a machine would lose it: the postmaster
  // and its children (backends would otherwise outlive it for a moment and
  // keep its shared memory, which a restart refuses to reuse).
  // Stopped first, the postmaster forks no backend while its children
  // are listed (one forked after the list would survive the kill).
  kill(pid, SIGSTOP);
  std::vector<pid_t> group = ChildrenOf(pid);
  group.push_back(pid);
  for (pid_t p : group) kill(p, SIGKILL);
  for (pid_t p : group) Reap(p);
  return true;
}

pid_t PostgresCluster::ServerPid() const {
  std::ifstream in(DataDir() + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return Alive(static_cast<pid_t>(pid)) ? static_cast<pid_t>(pid) : 0;
}

std::string PostgresCluster::Url(const std::string& name) const {
  return "postgresql://" + std::string(kUser) + "@/" + name +
         "?host=" + dir_.path() + "&port=" + kPort;
}

std::string PostgresCluster::NewDatabase(std::string* name_out) {
  const std::string name = "eraser_test_" + std::to_string(++databases_);
  std::string out;
  if (Run({std::string(kBin) + "createdb", "-h", dir_.path(), "-p", kPort, "-U",
           kUser, name},
          &out) != 0) {
    error_ = "createdb failed: " + out;
    return "";
  }
  if (name_out != nullptr) *name_out = name;
  return Url(name);
}

std::string PostgresCluster::Sql(const std::string& name,
                                 const std::string& sql) {
  std::string out;
  if (Run({std::string(kBin) + "psql", "-X", "-q", "-A", "-t", "-v",
           "ON_ERROR_STOP=1", "-h", dir_.path(), "-p", kPort, "-U", kUser, "-d",
           name, "-c", sql},
          &out) != 0) {
    error_ = "psql failed: " + out;
    return "";
  }
  return out;
}

bool PostgresCluster::CreateTablespace(const std::string& name,
                                       const std::string& location) {
  std::error_code ec;
  if (!std::filesystem::create_directory(location, ec)) {
    error_ = "cannot create " + location;
    return false;
  }
  if (const passwd* pw = ServerUser(); pw != nullptr) {
    // The location, and every directory above it that others cannot
    // enter (a test's private temporary directory).
    for (std::filesystem::path dir = location; dir.has_relative_path();
         dir = dir.parent_path()) {
      struct stat st;
      if (dir != location &&
          (::stat(dir.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) != 0)) {
        continue;
      }
      if (chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        error_ = "cannot hand " + dir.string() + " to the postgres user";
        return false;
      }
    }
  }
  Sql("postgres", "CREATE TABLESPACE " + name + " LOCATION '" + location + "'");
  return ok();
}

std::string PostgresCluster::DatabaseDir(const std::string& name) {
  std::string oid = Sql(
      "postgres", "SELECT oid FROM pg_database WHERE datname = '" + name + "'");
  while (!oid.empty() && (oid.back() == '\n' || oid.back() == ' ')) {
    oid.pop_back();
  }
  return oid.empty() ? "" : DataDir() + "/base/" + oid;
}

PostgresCluster& SharedPostgres() {
  static PostgresCluster* cluster = [] {
    auto* c = new PostgresCluster();
    std::atexit([] { delete cluster; });
    return c;
  }();
  return *cluster;
}

}  // namespace eraser::testing
