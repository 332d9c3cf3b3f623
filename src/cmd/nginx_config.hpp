// `nixery nginx-config [OPTIONS]`: prints the production nginx
// configuration (nginx/render.hpp, render_production_nginx_config) for the
// instance the environment configures.
#pragma once

#include <string>
#include <vector>

namespace nixery {

// Returns the exit code: 0 printed, 1 failed, 2 bad arguments.
int nginx_config_command(const std::vector<std::string>& args);

} // namespace nixery
