#include "command_line.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <vector>

namespace pageio::tools {

namespace {

// CLI11's help, with two changes. No "Excludes:" lists. And --help-all,
// after the list of commands, gives each command a section of its own that
// help2man turns into a sub-section of the man page:
//
//   pageio-wal dump:                     <- a line ending in ':'
//       one line per record: ...         <- its description (indented further, a paragraph of its own)
//     DIR                  the log directory
//     --from N>=0          first LSN to print
class help_formatter : public CLI::Formatter {
 public:
  std::string make_option_opts(const CLI::Option* opt) const override {
    std::string s = CLI::Formatter::make_option_opts(opt);
    if (const auto at = s.find(" " + get_label("Excludes") + ":"); at != std::string::npos) s.erase(at);
    return s;
  }

  std::string make_subcommands(const CLI::App* app, CLI::AppFormatMode mode) const override {
    if (mode != CLI::AppFormatMode::All) return CLI::Formatter::make_subcommands(app, mode);
    std::string out = CLI::Formatter::make_subcommands(app, CLI::AppFormatMode::Normal);
    for (const CLI::App* sub : app->get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); })) {
      out += "\n" + command_section(app, sub);
    }
    return out;
  }

 private:
  std::string command_section(const CLI::App* app, const CLI::App* sub) const {
    std::string out = fmt::format("{} {}:\n    {}\n", app->get_name(), sub->get_name(), sub->get_description());
    auto shown = [sub](const CLI::Option* o) {
      return o != sub->get_help_ptr() && o != sub->get_help_all_ptr() && !o->get_group().empty();
    };
    for (const CLI::Option* o : sub->get_options()) {
      if (shown(o) && o->nonpositional() == false) out += make_option(o, true);
    }
    for (const CLI::Option* o : sub->get_options()) {
      if (shown(o) && o->nonpositional()) out += make_option(o, false);
    }
    return out;
  }
};

std::vector<const CLI::App*> all_commands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); });
}

std::string command_names(const CLI::App& app) {
  std::string out;
  for (const CLI::App* sub : all_commands(app)) out += (out.empty() ? "" : ", ") + sub->get_name();
  return out;
}

// CLI11's words where they name no option or value, made to say what to do.
std::string reworded(const CLI::App& app, const CLI::ParseError& e, int argc, const char* const* argv) {
  const std::string what = e.what();
  if (app.get_subcommands().empty() && !all_commands(app).empty()) {
    // No command was recognised: the first word, if any, is not one.
    if (argc > 1 && argv[1][0] != '-') {
      return fmt::format("{}: not a command; give one of {}", argv[1], command_names(app));
    }
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
      return fmt::format("a command is required: one of {}", command_names(app));
    }
  }
  if (dynamic_cast<const CLI::ExcludesError*>(&e) != nullptr) {
    // "--qd excludes --iodepth": two names for one setting, or two settings that conflict.
    const auto at = what.find(" excludes ");
    if (at != std::string::npos) {
      return fmt::format("{} and {} cannot be given together; give one of them", what.substr(0, at),
                         what.substr(at + 10));
    }
  }
  return what;
}

}  // namespace

void set_common_flags(CLI::App& app, std::string_view version) {
  app.formatter(std::make_shared<help_formatter>());
  app.set_version_flag("--version", fmt::format("{} {}", app.get_name(), version), "print the version and exit");
  app.set_help_all_flag("--help-all", "print the help of every command and exit");
}

std::optional<int> parse_command_line(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return report_usage_error(app.get_name(), reworded(app, e, argc, argv));
  }
  return std::nullopt;
}

}  // namespace pageio::tools
