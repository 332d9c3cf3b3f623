// Streaming SHA-256 over OpenSSL's EVP interface, and the "sha256:<hex>"
// digest strings the registry speaks. Pure computation: no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace nixery {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;

    void update(const void* data, std::size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // Finishes the hash; the object must not be updated afterwards.
    std::array<std::uint8_t, 32> finish();
    // finish() as 64 lowercase hex characters.
    std::string finish_hex();

private:
    std::unique_ptr<evp_md_ctx_st, void (*)(evp_md_ctx_st*)> m_ctx;
};

std::string to_hex(const std::uint8_t* data, std::size_t size);
// Raw bytes (a signature, an HMAC) as lowercase hex.
inline std::string to_hex(std::string_view raw) {
    return to_hex(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
}
std::string sha256_hex(std::string_view data);
// "sha256:" + sha256_hex(data): the digest of a blob as the registry names it.
std::string sha256_digest(std::string_view data);

} // namespace nixery
