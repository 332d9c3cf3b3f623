#include "core/cache_keys.hpp"

#include "util/sha256.hpp"
#include "util/text.hpp"

namespace nixery {

namespace {

// NUL separates fields: it cannot occur in any of them.
class KeyHasher {
public:
    explicit KeyHasher(std::string_view kind) { add(kind); }
    KeyHasher& add(std::string_view field) {
        m_hash.update(field);
        m_hash.update(std::string_view("\0", 1));
        return *this;
    }
    std::string finish() { return m_hash.finish_hex(); }

private:
    Sha256 m_hash;
};

// The key versions: bump one when the way the bytes it names are produced
// changes (each says why below).
constexpr std::string_view k_image_version = "image-v3";
constexpr std::string_view k_closure_version = "closure-v3";
constexpr std::string_view k_layer_version = "layer-v2";
constexpr std::string_view k_top_version = "top-v1";

// gzip keys have no suffix (they are those from before zstd existed); zstd
// gets keys of its own.
std::string kind(std::string_view base, LayerCompression compression) {
    return std::string(base) + (compression == LayerCompression::zstd ? "+zstd" : "");
}

} // namespace

std::string image_key(std::string_view revision, const Image& image, std::string_view layering,
                      LayerCompression compression) {
    // v2: evaluations lead to images with labels; v3: and the layering
    // and compression they were built with.
    KeyHasher h(k_image_version);
    h.add(revision).add(nix_system(image.arch)).add(layering).add(to_string(compression));
    for (const auto& p : image.packages) {
        h.add(p);
    }
    return h.finish();
}

std::string closure_key(const std::vector<std::string>& out_paths, Arch arch, bool bash,
                        std::string_view popularity_digest, std::size_t budget,
                        std::string_view provenance_digest, LayerCompression compression) {
    // v3: its layers are those of layer-v2.
    KeyHasher h(kind(k_closure_version, compression));
    h.add(nix_system(arch))
        .add(bash ? "bash" : "-")
        .add(popularity_digest)
        .add(std::to_string(budget))
        .add(provenance_digest);
    for (const auto& p : out_paths) {
        h.add(p);
    }
    return h.finish();
}

std::string layer_key(const std::vector<std::string>& sorted_store_paths,
                      LayerCompression compression) {
    // v2: a hard link's tar entry has its file's mode, not 0444, which
    // Docker and containerd apply to both names (v1 layers with identical
    // executables left them unrunnable): packed again, not reused.
    KeyHasher h(kind(k_layer_version, compression));
    for (const auto& p : sorted_store_paths) {
        h.add(p);
    }
    return h.finish();
}

std::string top_layer_key(const std::vector<std::string>& package_paths,
                          LayerCompression compression) {
    KeyHasher h(kind(k_top_version, compression));
    for (const auto& p : package_paths) {
        h.add(p);
    }
    return h.finish();
}

std::string cache_key_settings(std::string_view layering, LayerCompression compression) {
    std::string out = "key versions: ";
    out.append(k_image_version).append(" ").append(k_closure_version).append(" ");
    out.append(k_layer_version).append(" ").append(k_top_version).append("\n");
    out.append("layering: ").append(layering).append("\n");
    out.append("layer compression: ").append(to_string(compression)).append("\n");
    return out;
}

std::vector<std::string> changed_cache_key_settings(std::string_view before, std::string_view now) {
    const auto fields = [](std::string_view text) {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& line : split_nonempty(text, '\n')) {
            const auto colon = line.find(": ");
            if (colon != std::string::npos) {
                out.emplace_back(line.substr(0, colon), line.substr(colon + 2));
            }
        }
        return out;
    };
    const auto old_fields = fields(before);
    std::vector<std::string> changed;
    for (const auto& [name, value] : fields(now)) {
        std::string was = "(none)";
        for (const auto& [old_name, old_value] : old_fields) {
            if (old_name == name) {
                was = old_value;
            }
        }
        if (was != value) {
            changed.push_back(name + ": " + was + " -> " + value);
        }
    }
    return changed;
}

} // namespace nixery
