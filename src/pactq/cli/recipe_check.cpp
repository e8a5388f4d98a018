#include "pactq/cli/recipe_check.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace pactq::cli {

std::string recipe_path(int argc, char** argv) {
  const std::string flag = "--config";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") break;
    if (a == flag && i + 1 < argc) return argv[i + 1];
    if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
  }
  return "";
}

namespace {

// What a value of this option must look like, or "" if any text will do.
std::string expected_kind(const CLI::Option& opt) {
  if (opt.get_expected_min() == 0) return "true or false";
  const std::string type = opt.get_type_name();
  if (type == "INT") return "an integer";
  if (type == "UINT") return "a non-negative integer";
  if (type == "FLOAT") return "a number";
  return "";
}

bool value_fits(const CLI::Option& opt, const std::string& value) {
  if (opt.get_expected_min() == 0) {
    try {
      (void)CLI::detail::to_flag_value(value);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }
  const std::string type = opt.get_type_name();
  if (type == "INT") {
    std::int64_t v = 0;
    return CLI::detail::lexical_cast(value, v);
  }
  if (type == "UINT") {
    std::uint64_t v = 0;
    return CLI::detail::lexical_cast(value, v);
  }
  if (type == "FLOAT") {
    double v = 0;
    return CLI::detail::lexical_cast(value, v);
  }
  return true;
}

}  // namespace

void check_recipe(const std::string& path, const CLI::App& app, const CLI::App& train) {
  auto fail = [&](const std::string& what) { throw std::invalid_argument(path + ": " + what); };
  {
    std::ifstream probe(path);
    if (!probe) fail(std::string("cannot read the recipe: ") + std::strerror(errno));
  }
  std::vector<CLI::ConfigItem> items;
  try {
    items = app.get_config_formatter()->from_file(path);
  } catch (const CLI::Error& e) {
    fail(std::string("not a valid TOML recipe: ") + e.what());
  }
  const std::string section = train.get_name();
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // CLI11's section markers
    if (item.parents.empty()) {
      fail("key '" + item.name +
           "' is outside a section; put the options of `pactq train` under [" + section + "]");
    }
    const std::string where = CLI::detail::join(item.parents, ".");
    if (item.parents.size() != 1 || item.parents[0] != section) {
      fail("unknown section [" + where + "] (the options of `pactq train` go under [" + section +
           "])");
    }
    const CLI::Option* opt = train.get_option_no_throw("--" + item.name);
    if (opt == nullptr && item.name.size() == 1) opt = train.get_option_no_throw("-" + item.name);
    if (opt == nullptr) {
      std::string hint;
      std::string dashed = item.name;
      for (char& ch : dashed) ch = ch == '_' ? '-' : ch;
      if (dashed != item.name && train.get_option_no_throw("--" + dashed) != nullptr)
        hint = " (did you mean '" + dashed + "'?)";
      fail("unknown key '" + item.name + "' in [" + where + "]" + hint +
           "; the keys are the long options of `pactq train --help`");
    }
    for (const std::string& value : item.inputs) {
      if (!value_fits(*opt, value)) {
        fail("'" + item.name + "' in [" + where + "] is \"" + value + "\", expected " +
             expected_kind(*opt));
      }
    }
  }
}

}  // namespace pactq::cli
