#include "support/run_command.hpp"

#include <sys/wait.h>

#include <cstdio>

namespace pageio::test {

command_output run_command(const std::string& cmd) {
  command_output r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace pageio::test
