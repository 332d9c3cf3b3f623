#include "util/crypto.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

namespace nixery {

namespace {

std::string openssl_error() {
    const auto code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) {
        return "unknown OpenSSL error";
    }
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    return buf;
}

} // namespace

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string base64_encode(std::string_view data) {
    static constexpr char k_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        const std::uint32_t n = static_cast<std::uint8_t>(data[i]) << 16 |
                                static_cast<std::uint8_t>(data[i + 1]) << 8 |
                                static_cast<std::uint8_t>(data[i + 2]);
        out += k_alphabet[n >> 18 & 63];
        out += k_alphabet[n >> 12 & 63];
        out += k_alphabet[n >> 6 & 63];
        out += k_alphabet[n & 63];
    }
    if (i + 1 == data.size()) {
        const std::uint32_t n = static_cast<std::uint8_t>(data[i]) << 16;
        out += k_alphabet[n >> 18 & 63];
        out += k_alphabet[n >> 12 & 63];
        out += "==";
    } else if (i + 2 == data.size()) {
        const std::uint32_t n =
            static_cast<std::uint8_t>(data[i]) << 16 | static_cast<std::uint8_t>(data[i + 1]) << 8;
        out += k_alphabet[n >> 18 & 63];
        out += k_alphabet[n >> 12 & 63];
        out += k_alphabet[n >> 6 & 63];
        out += '=';
    }
    return out;
}

std::string base64url_encode(std::string_view data) {
    auto out = base64_encode(data);
    while (!out.empty() && out.back() == '=') {
        out.pop_back();
    }
    for (auto& c : out) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    return out;
}

Result<RsaPrivateKey> RsaPrivateKey::from_pem(std::string_view pem, std::string_view what) {
    std::unique_ptr<BIO, void (*)(BIO*)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free_all);
    if (!bio) {
        return fail("read private key of " + std::string(what) + " failed: " + openssl_error());
    }
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (key == nullptr) {
        return fail("read private key of " + std::string(what) + " failed: " + openssl_error());
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        EVP_PKEY_free(key);
        return fail("read private key of " + std::string(what) + " failed: not an RSA key");
    }
    return RsaPrivateKey(std::shared_ptr<evp_pkey_st>(key, EVP_PKEY_free));
}

Result<std::string> RsaPrivateKey::sign_sha256(std::string_view data) const {
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, m_key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
        return fail("RSA-SHA256 signing failed: " + openssl_error());
    }
    std::string out(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
        return fail("RSA-SHA256 signing failed: " + openssl_error());
    }
    out.resize(len);
    return out;
}

} // namespace nixery
