#include "core/cache_keys.hpp"

#include "util/sha256.hpp"

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
    KeyHasher h("image-v3");
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
    KeyHasher h(kind("closure-v3", compression));
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
    KeyHasher h(kind("layer-v2", compression));
    for (const auto& p : sorted_store_paths) {
        h.add(p);
    }
    return h.finish();
}

std::string top_layer_key(const std::vector<std::string>& package_paths,
                          LayerCompression compression) {
    KeyHasher h(kind("top-v1", compression));
    for (const auto& p : package_paths) {
        h.add(p);
    }
    return h.finish();
}

} // namespace nixery
