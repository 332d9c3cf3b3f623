// Rendering the nginx configuration templates of nginx/ (@NAME@
// placeholders) for the paths of this instance.
#pragma once

#include "config.hpp"
#include "util/result.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace nixery {

// Replaces every @NAME@ in `text`; a placeholder without a value is an error.
Result<std::string> render_template(const std::string& text,
                                    const std::map<std::string, std::string>& values);

// The placeholder values for this configuration (socket, storage, timeouts).
std::map<std::string, std::string> nginx_values(const Config& config);

// The internal /_storage/ location rendered from `template_text`
// (nginx/storage-location.conf.in) for the filesystem backend; for object
// stores, which redirect, a comment instead.
Result<std::string> storage_location(const Config& config, const std::string& template_text);

// Writes nginx.conf and nginx-locations.conf for a local instance into the
// state directory; returns the path of nginx.conf.
Result<std::filesystem::path> write_local_nginx_config(const Config& config);

} // namespace nixery
