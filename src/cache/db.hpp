// A SQLite connection: WAL mode, a busy timeout so several processes can
// share the file, prepared statements with bound parameters only (never SQL
// built from request data), and schema migrations from the sql/ directory
// (NNN_name.sql, applied in order, recorded in PRAGMA user_version).
// One connection per thread; open it after fork().
#pragma once

#include "util/result.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace nixery {

class Db;

class Statement {
public:
    Statement(Statement&&) noexcept;
    ~Statement();
    Statement(const Statement&) = delete;

    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, double value);
    Statement& bind_null(int index);

    // Next row: true when there is one. Errors are values.
    Result<bool> step();
    // Runs to completion (for statements without rows).
    Result<void> run();

    std::string text(int column) const;
    // Steps through the remaining rows, collecting text(column) of each.
    Result<std::vector<std::string>> texts(int column);
    std::int64_t integer(int column) const;
    double real(int column) const;
    bool is_null(int column) const;

private:
    friend class Db;
    Statement(sqlite3_stmt* stmt, sqlite3* db, bool* in_use)
        : m_stmt(stmt), m_db(db), m_in_use(in_use) {}
    sqlite3_stmt* m_stmt;
    sqlite3* m_db;
    bool* m_in_use; // set: the Db's cached statement, reset (not finalized) when done
};

class Db {
public:
    // Opens (creating) the database and brings its schema up to date from
    // the *.sql files in `migrations`.
    static Result<Db> open(const std::filesystem::path& file,
                           const std::filesystem::path& migrations);
    // Opens an existing database to read only: no schema change, no write.
    // Fails when its schema is older than the newest of `migrations` (which
    // `nixery serve` applies at start-up).
    static Result<Db> open_read_only(const std::filesystem::path& file,
                                     const std::filesystem::path& migrations);
    Db(Db&&) noexcept;
    Db& operator=(Db&&) noexcept;
    ~Db();

    // A compiled statement; bind its parameters, then step() or run().
    // Compiled once per connection and reused: a request runs the same few
    // queries every time. (All SQL is literal, so the cache is bounded.)
    Result<Statement> prepare(std::string_view sql);
    Result<void> exec(std::string_view sql);
    int schema_version();

private:
    struct CachedStatement {
        sqlite3_stmt* stmt = nullptr;
        bool in_use = false;
    };

    explicit Db(sqlite3* db) : m_db(db) {}
    Result<void> migrate(const std::filesystem::path& dir);
    void close();
    sqlite3* m_db = nullptr;
    // By SQL text; a statement already in use (a query run inside the loop
    // over another's rows) is compiled afresh for the inner use.
    std::unordered_map<std::string, std::unique_ptr<CachedStatement>> m_statements;
};

// BEGIN IMMEDIATE … COMMIT, rolled back unless commit() ran.
class Transaction {
public:
    static Result<Transaction> begin(Db& db);
    Transaction(Transaction&& o) noexcept : m_db(o.m_db) { o.m_db = nullptr; }
    ~Transaction();
    Result<void> commit();

private:
    explicit Transaction(Db* db) : m_db(db) {}
    Db* m_db;
};

} // namespace nixery
