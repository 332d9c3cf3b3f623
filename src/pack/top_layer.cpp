#include "pack/top_layer.hpp"

#include "util/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <sys/stat.h>

namespace nixery {

namespace {

constexpr std::string_view k_passwd = "root:x:0:0:root:/root:/bin/sh\n"
                                      "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
constexpr std::string_view k_group = "root:x:0:\n"
                                     "nobody:x:65534:\n";

Result<void> merge_tree(TopLayerPlan& plan, const std::string& abs, const std::string& rel) {
    TRY_ASSIGN(const auto names, sorted_dir_entries(abs));
    for (const auto& name : names) {
        // A runtime reads a ".wh.*" entry as a whiteout of the layers below
        // (".wh.nix" would remove /nix, ".wh..wh..opq" empty the directory),
        // never as a file: leave such names out of the symlink layer.
        if (name.starts_with(".wh.")) {
            continue;
        }
        const auto child_abs = abs + "/" + name;
        const auto child_rel = rel.empty() ? name : rel + "/" + name;
        struct stat st {};
        if (::lstat(child_abs.c_str(), &st) != 0) {
            return fail("lstat \"" + child_abs + "\" failed: " + errno_text(errno));
        }
        const auto existing = plan.find(child_rel);
        if (S_ISDIR(st.st_mode)) {
            if (existing == plan.end()) {
                plan[child_rel] = TopEntry{TopEntry::Kind::directory, 0755, {}};
            } else if (existing->second.kind != TopEntry::Kind::directory) {
                continue; // an earlier package has a file here
            }
            TRY(merge_tree(plan, child_abs, child_rel));
        } else if (existing == plan.end()) {
            plan[child_rel] = TopEntry{TopEntry::Kind::symlink, 0777, child_abs};
        }
    }
    return {};
}

// The real path of `path`, or nullopt when it does not resolve (a dangling
// link, a loop).
Result<std::optional<std::string>> resolve(const std::string& path) {
    std::unique_ptr<char, void (*)(void*)> real(::realpath(path.c_str(), nullptr), std::free);
    if (!real) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
            return std::optional<std::string>();
        }
        return fail("realpath \"" + path + "\" failed: " + errno_text(errno));
    }
    return std::optional<std::string>(real.get());
}

// Whether package `pkg` has a tree to merge: it is a directory, or a
// symlink (a store path may be one) to a directory in the same store. A
// link out of the store (to /etc, /run/current-system/…) or a dangling one
// has none here: following it would fill the image's root with the build
// machine's own tree, and a dangling one failed the build.
Result<bool> has_tree(const std::string& pkg) {
    struct stat st {};
    if (::lstat(pkg.c_str(), &st) != 0) {
        return fail("lstat \"" + pkg + "\" failed: " + errno_text(errno));
    }
    if (!S_ISLNK(st.st_mode)) {
        return S_ISDIR(st.st_mode);
    }
    TRY_ASSIGN(const auto target, resolve(pkg));
    const auto parent = std::filesystem::path(pkg).parent_path().string();
    TRY_ASSIGN(const auto store, resolve(parent));
    if (!target || !store || !target->starts_with(*store + "/")) {
        return false;
    }
    if (::stat(target->c_str(), &st) != 0) {
        return fail("stat \"" + *target + "\" failed: " + errno_text(errno));
    }
    return S_ISDIR(st.st_mode);
}

void ensure_directory(TopLayerPlan& plan, const std::string& rel, mode_t mode = 0755) {
    plan.emplace(rel, TopEntry{TopEntry::Kind::directory, mode, {}});
}

bool is_directory(const TopLayerPlan& plan, const std::string& rel) {
    const auto it = plan.find(rel);
    return it == plan.end() || it->second.kind == TopEntry::Kind::directory;
}

} // namespace

Result<TopLayerPlan> plan_top_layer(const std::vector<std::string>& package_paths) {
    TopLayerPlan plan;
    for (const auto& pkg : package_paths) {
        TRY_ASSIGN(const bool tree, has_tree(pkg));
        if (tree) {
            TRY(merge_tree(plan, pkg, ""));
        } // a package that is a single file has no tree to merge
    }
    if (is_directory(plan, "tmp")) {
        plan["tmp"] = TopEntry{TopEntry::Kind::directory, 01777, {}};
    }
    if (is_directory(plan, "usr") && is_directory(plan, "usr/bin")) {
        const auto env = plan.find("bin/env");
        if (env != plan.end() && env->second.kind == TopEntry::Kind::symlink) {
            ensure_directory(plan, "usr");
            ensure_directory(plan, "usr/bin");
            plan.emplace("usr/bin/env",
                         TopEntry{TopEntry::Kind::symlink, 0777, env->second.target});
        }
    }
    if (is_directory(plan, "etc")) {
        ensure_directory(plan, "etc");
        plan.emplace("etc/passwd", TopEntry{TopEntry::Kind::file, 0644, std::string(k_passwd)});
        plan.emplace("etc/group", TopEntry{TopEntry::Kind::file, 0644, std::string(k_group)});
    }
    return plan;
}

Result<void> add_top_layer(LayerWriter& writer, const TopLayerPlan& plan) {
    for (const auto& [path, entry] : plan) {
        switch (entry.kind) {
        case TopEntry::Kind::directory:
            TRY(writer.add_directory(path, entry.mode));
            break;
        case TopEntry::Kind::symlink:
            TRY(writer.add_symlink(path, entry.target));
            break;
        case TopEntry::Kind::file:
            TRY(writer.add_file_data(path, entry.mode, entry.target));
            break;
        }
    }
    return {};
}

} // namespace nixery
