#include "run_info.hpp"

#include <pageio/version.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

namespace pageio::tools {

namespace {

std::string read_line(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

// The mount whose device number is `dev` in /proc/self/mountinfo: its file
// system type and mount point (the longest such mount point holding `path`).
void mount_of(dev_t dev, const std::filesystem::path& path, nlohmann::json* out) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, best_point;
  const std::string want = std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  const std::string p = path.string();
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options ... - fstype source super-options
    std::istringstream f(line);
    std::string id, parent, mm, root, point;
    f >> id >> parent >> mm >> root >> point;
    if (mm != want) continue;
    if (p.rfind(point, 0) != 0 || point.size() < best_point.size()) continue;
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream t(line.substr(dash + 3));
    std::string fstype;
    t >> fstype;
    best_point = point;
    (*out)["filesystem"] = fstype;
    (*out)["mount"] = point;
  }
}

}  // namespace

nlohmann::json device_of(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) return nullptr;
  while (!p.empty() && !std::filesystem::exists(p, ec)) {
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0) return nullptr;
  nlohmann::json d = {{"name", nullptr}, {"disk", nullptr}, {"model", nullptr}, {"rotational", nullptr},
                      {"filesystem", nullptr}, {"mount", nullptr}};
  mount_of(st.st_dev, p, &d);
  const std::filesystem::path sys =
      "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  const std::filesystem::path real = std::filesystem::canonical(sys, ec);
  if (ec) return d["filesystem"].is_null() ? nlohmann::json(nullptr) : d;  // no block device (tmpfs, overlay...)
  d["name"] = real.filename().string();
  // A partition's disk is its parent directory in sysfs.
  const std::filesystem::path disk = std::filesystem::exists(real / "partition") ? real.parent_path() : real;
  d["disk"] = disk.filename().string();
  const std::string model = read_line(disk / "device" / "model");
  if (!model.empty()) d["model"] = model;
  const std::string rot = read_line(disk / "queue" / "rotational");
  if (!rot.empty()) d["rotational"] = rot == "1";
  return d;
}

nlohmann::json run_info(std::string_view tool, const std::filesystem::path& data_path) {
  nlohmann::json j;
  j["tool"] = std::string(tool);
  j["version"] = pageio::version_string;
  j["schema"] = json_schema;
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  j["time"] = buf;
  struct utsname u{};
  j["kernel"] = ::uname(&u) == 0 ? nlohmann::json(u.release) : nlohmann::json(nullptr);
  j["device"] = device_of(data_path);
  return j;
}

void stamp(nlohmann::json& j, std::string_view tool, const std::filesystem::path& data_path) {
  const nlohmann::json info = run_info(tool, data_path);  // named: items() of a temporary would dangle
  for (const auto& [k, v] : info.items()) {
    if (!j.contains(k)) j[k] = v;
  }
}

}  // namespace pageio::tools
