// `nixery gc [--keep-days N] [--dry-run]`: one garbage collection of the
// instance the environment configures (see gc/collector.hpp), as the
// nixery-gc.service timer runs it. Prints a line per deletion and a summary
// on stdout; logs JSON on stderr like the service.
#pragma once

#include <string>
#include <vector>

namespace nixery {

// Returns the process exit code: 0 done, 1 failed, 2 bad arguments.
int gc_command(const std::vector<std::string>& args);

} // namespace nixery
