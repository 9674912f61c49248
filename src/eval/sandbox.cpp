#include "eval/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/error.h"

namespace pcm::eval {

namespace {

constexpr uid_t kNobody = 65534;

std::string python_path() {
  for (const char* p : {"/usr/bin/python3", "/usr/local/bin/python3"})
    if (access(p, X_OK) == 0) return p;
  fail("sandbox: python3 not found (/usr/bin/python3)");
}

// Probes in a throwaway child whether unshare() of `flags` works here (containers often forbid it).
bool can_unshare(int flags) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) _exit(unshare(flags) == 0 ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void set_limit(int resource, rlim_t value) {
  struct rlimit rl {value, value};
  setrlimit(resource, &rl);
}

// The child side: only system calls between fork and exec (we may be one of many threads).
[[noreturn]] void child(const std::string& dir, const std::vector<char*>& argv, char* const* envp, int out_fd, int err_fd,
                        const SandboxLimits& l, const SandboxIsolation& iso) {
  setpgid(0, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, 0);
  if (iso.network_namespace) unshare(CLONE_NEWNET);  // no interfaces but a down loopback: no network
  if (iso.pid_namespace && unshare(CLONE_NEWPID) == 0) {
    // The next child is PID 1 of the new namespace; when it ends the kernel kills everything it left.
    pid_t inner = fork();
    if (inner < 0) _exit(125);
    if (inner > 0) {
      int status = 0;
      while (waitpid(inner, &status, 0) < 0 && errno == EINTR) {
      }
      if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
      _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 125);
    }
  }
  if (chdir(dir.c_str()) != 0) _exit(126);
  set_limit(RLIMIT_CPU, static_cast<rlim_t>(l.cpu_seconds + 0.999));
  set_limit(RLIMIT_AS, l.address_space_bytes);
  set_limit(RLIMIT_FSIZE, l.file_size_bytes);
  set_limit(RLIMIT_CORE, 0);
  set_limit(RLIMIT_NOFILE, 256);
  if (iso.unprivileged_uid) {
    setgroups(0, nullptr);
    if (setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(126);
  }
  // Counted per uid and ignored for root: binding after the drop to nobody, or for a non-root harness
  // (whose own processes count too, so a fork bomb stops even sooner).
  set_limit(RLIMIT_NPROC, static_cast<rlim_t>(l.max_processes));
  execve(argv[0], argv.data(), envp);
  _exit(127);
}

void read_available(int fd, std::string& into, size_t keep, bool& open_flag) {
  char buf[8192];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) {
    size_t room = into.size() < keep ? keep - into.size() : 0;
    into.append(buf, std::min(room, static_cast<size_t>(n)));
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    open_flag = false;
  }
}

}  // namespace

std::string SandboxIsolation::describe() const {
  return std::string("network namespace: ") + (network_namespace ? "yes" : "unavailable") +
         ", pid namespace: " + (pid_namespace ? "yes" : "unavailable") +
         ", unprivileged uid: " + (unprivileged_uid ? "yes (nobody)" : "no");
}

const SandboxIsolation& sandbox_isolation() {
  static const SandboxIsolation iso = [] {
    SandboxIsolation i;
    i.network_namespace = can_unshare(CLONE_NEWNET);
    i.pid_namespace = can_unshare(CLONE_NEWPID);
    i.unprivileged_uid = geteuid() == 0;
    return i;
  }();
  return iso;
}

SandboxResult run_python(const std::string& program, const SandboxLimits& l) {
  const SandboxIsolation& iso = sandbox_isolation();
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "pcm-sandbox-XXXXXX").string();
  PCM_CHECK(mkdtemp(tmpl.data()), "sandbox: cannot create a temp directory: {}", std::strerror(errno));
  const std::string dir = tmpl;
  struct Cleanup {
    std::string d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  { std::ofstream(dir + "/program.py", std::ios::binary) << program; }
  if (iso.unprivileged_uid) {
    // The program runs as nobody: it owns its directory and nothing else.
    PCM_CHECK(chown(dir.c_str(), kNobody, kNobody) == 0 && chown((dir + "/program.py").c_str(), kNobody, kNobody) == 0,
              "sandbox: chown of {} failed: {}", dir, std::strerror(errno));
  }
  std::string py = python_path(), flag_i = "-I", flag_b = "-B", file = "program.py";
  std::vector<char*> argv = {py.data(), flag_i.data(), flag_b.data(), file.data(), nullptr};
  std::string path_env = "PATH=/usr/bin:/bin", home_env = "HOME=" + dir, lang = "LANG=C.UTF-8";
  char* envp[] = {path_env.data(), home_env.data(), lang.data(), nullptr};

  int out_pipe[2], err_pipe[2];
  PCM_CHECK(pipe2(out_pipe, O_CLOEXEC) == 0 && pipe2(err_pipe, O_CLOEXEC) == 0, "sandbox: pipe failed");
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    fail("sandbox: fork failed: {}", std::strerror(errno));
  }
  if (pid == 0) child(dir, argv, envp, out_pipe[1], err_pipe[1], l, iso);
  setpgid(pid, pid);  // also done in the child; whichever runs first
  close(out_pipe[1]);
  close(err_pipe[1]);

  SandboxResult r;
  bool out_open = true, err_open = true, killed = false;
  const auto deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(l.wall_seconds));
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      kill(-pid, SIGKILL);  // the whole group (and with a PID namespace, everything inside)
      killed = true;
      break;
    }
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(std::min<long long>(left, 200)));
    if (n < 0 && errno != EINTR) break;
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) read_available(out_pipe[0], r.out, l.output_bytes, out_open);
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) read_available(err_pipe[0], r.err, l.output_bytes, err_open);
  }
  int status = 0;
  if (!killed) {
    // Pipes closed: the program (or every holder of its pipes) is done; give it the rest of the budget.
    while (true) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) break;
      if (std::chrono::steady_clock::now() > deadline) {
        kill(-pid, SIGKILL);
        killed = true;
        break;
      }
      usleep(2000);
    }
  }
  if (killed) {
    waitpid(pid, &status, 0);
    kill(-pid, SIGKILL);  // stragglers that left the pipes open
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.timed_out = killed;
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    if (r.exit_code > 128 && iso.pid_namespace) r.signal = r.exit_code - 128;  // relayed by the namespace's parent
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
    r.exit_code = -1;
  }
  if (r.signal) r.exit_code = -1;
  return r;
}

}  // namespace pcm::eval
