// sluice entry point: command line as PgBouncer's, then App::run().
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "admin/console.h"
#include "app/app.h"
#include "app/budget.h"
#include "config/config.h"

namespace {

void usage(FILE* f) {
  std::fprintf(f,
               "sluice is a PostgreSQL connection pooler.\n\n"
               "Usage:\n"
               "  sluice [OPTION]... CONFIG_FILE\n"
               "  sluice check CONFIG_FILE\n"
               "  sluice budget [OPTION]... CONFIG_FILE|CONNINFO  (see sluice budget --help)\n\n"
               "Options:\n"
               "  -d, --daemon     run in the background (without it, in the foreground)\n"
               "  -q, --quiet      run quietly (no log lines on stderr)\n"
               "  -v, --verbose    increase verbosity\n"
               "  -V, --version    show version, then exit\n"
               "  -h, --help       show this help, then exit\n");
}

}  // namespace

int main(int argc, char** argv) {
  sluice::app::Options opts;
  if (argc >= 2 && std::string_view(argv[1]) == "check") {
    return sluice::app::check_main(argc - 1, argv + 1);
  }
  if (argc >= 2 && std::string_view(argv[1]) == "budget") {
    return sluice::app::budget_main(argc - 1, argv + 1);
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if (a == "-V" || a == "--version") {
      std::printf("%s\n", sluice::admin::version_string().c_str());
      return 0;
    }
    if (a == "-d" || a == "--daemon") {
      opts.daemon = true;
    } else if (a == "-q" || a == "--quiet") {
      opts.quiet = true;
    } else if (a == "-v" || a == "--verbose") {
      ++opts.verbose;
    } else if (a.size() > 2 && a[0] == '-' && a[1] == 'v' &&
               a.find_first_not_of('v', 1) == std::string_view::npos) {
      opts.verbose += static_cast<int>(a.size()) - 1;
    } else if (a == "-R" || a == "--reboot") {
      std::fprintf(stderr, "sluice: --reboot (online restart) is not supported\n");
      return 1;
    } else if (a == "-u" || a == "--user") {
      if (++i >= argc) {
        usage(stderr);
        return 1;
      }
      std::fprintf(stderr, "sluice: -u is not supported; start sluice as the target user\n");
      return 1;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "sluice: unknown option %s\n", argv[i]);
      usage(stderr);
      return 1;
    } else if (opts.config_path.empty()) {
      opts.config_path = std::string(a);
    } else {
      std::fprintf(stderr, "sluice: too many arguments\n");
      return 1;
    }
  }
  if (opts.config_path.empty()) {
    usage(stderr);
    return 1;
  }
  sluice::app::App app(std::move(opts));
  return app.run();
}
