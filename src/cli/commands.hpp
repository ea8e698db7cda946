// The dmem command's sub-commands. Each takes its arguments (after the sub-command name) and
// returns the process exit status: 0 success, 1 a negative answer (violations, no viable plan),
// 2 bad input (one line on stderr naming the file, tensor or flag), 3 internal error.
#pragma once

#include <string>
#include <vector>

namespace dmem::cli {

using Args = std::vector<std::string>;

int run_models(const Args& args);
int run_inspect(const Args& args);
int run_plan(const Args& args);
int run_validate(const Args& args);
int run_hardware(const Args& args);
int run_run(const Args& args);
int run_plugins(const Args& args);
int run_report(const Args& args);
int run_convert(const Args& args);
int run_calibrate(const Args& args);

}  // namespace dmem::cli
