// Result values for routine failures. g++ 12 has no <expected>; this is the
// subset of std::expected the project uses, so the switch later is a rename.
// Nothing here allocates beyond what T and E do; nothing throws except
// value() on an error, which is a programming mistake.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace nixery {

// The default error: one message in the house shape
// (operation, quoted object, cause).
struct Error {
    std::string message;
};

template <typename E> struct Unexpected { E error; };

template <typename E> Unexpected<std::decay_t<E>> unexpected(E&& e) {
    return {std::forward<E>(e)};
}

inline Unexpected<Error> fail(std::string message) {
    return {Error{std::move(message)}};
}

template <typename T, typename E = Error> class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    template <typename U>
    Result(Unexpected<U> e) : m_v(std::in_place_index<1>, std::move(e.error)) {}

    bool has_value() const { return m_v.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & {
        check();
        return std::get<0>(m_v);
    }
    const T& value() const& {
        check();
        return std::get<0>(m_v);
    }
    T&& value() && {
        check();
        return std::get<0>(std::move(m_v));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const E& error() const& { return std::get<1>(m_v); }
    E&& error() && { return std::get<1>(std::move(m_v)); }

    template <typename U> T value_or(U&& fallback) const& {
        return has_value() ? std::get<0>(m_v) : T(std::forward<U>(fallback));
    }

private:
    void check() const {
        if (!has_value()) {
            throw std::logic_error("Result::value() called on an error");
        }
    }
    std::variant<T, E> m_v;
};

template <typename E> class [[nodiscard]] Result<void, E> {
public:
    Result() = default;
    template <typename U> Result(Unexpected<U> e) : m_error(std::move(e.error)), m_ok(false) {}

    bool has_value() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    void value() const {
        if (!m_ok) {
            throw std::logic_error("Result::value() called on an error");
        }
    }
    const E& error() const& { return m_error; }
    E&& error() && { return std::move(m_error); }

private:
    E m_error{};
    bool m_ok = true;
};

} // namespace nixery

// Propagate an error from an expression yielding a Result; discard its value.
#define TRY(expr_)                                                                                 \
    do {                                                                                           \
        auto try_result_ = (expr_);                                                                \
        if (!try_result_) {                                                                        \
            return ::nixery::unexpected(std::move(try_result_).error());                           \
        }                                                                                          \
    } while (false)

#define NIXERY_CONCAT_INNER_(a, b) a##b
#define NIXERY_CONCAT_(a, b) NIXERY_CONCAT_INNER_(a, b)

// Declare `lhs_` from the value of a Result, or propagate its error.
#define TRY_ASSIGN(lhs_, expr_) TRY_ASSIGN_IMPL_(NIXERY_CONCAT_(try_r_, __LINE__), lhs_, expr_)
#define TRY_ASSIGN_IMPL_(tmp_, lhs_, expr_)                                                        \
    auto tmp_ = (expr_);                                                                           \
    if (!tmp_) {                                                                                   \
        return ::nixery::unexpected(std::move(tmp_).error());                                      \
    }                                                                                              \
    lhs_ = std::move(*tmp_)
