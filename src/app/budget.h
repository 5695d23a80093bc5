// The command-line tools beside the pooler: `sluice budget` and `sluice check`.
#pragma once

namespace sluice::app {

// `sluice budget [OPTION]... FILE|CONNINFO`; argv[0] is "budget". Exit status: 0 the budget
// holds, 1 it does not, 2 it could not be checked (or bad usage).
[[nodiscard]] int budget_main(int argc, char** argv);

// `sluice check FILE`; argv[0] is "check". Exit status: 0 valid, 1 invalid, 2 bad usage.
[[nodiscard]] int check_main(int argc, char** argv);

}  // namespace sluice::app
