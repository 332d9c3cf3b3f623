#include "cache/db.hpp"

#include "util/files.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace nixery {

namespace {

constexpr int k_busy_timeout_ms = 30000;

// A database a newer release migrated: this one's SQL would run against a
// schema it does not know.
std::string newer_schema(int version, int newest) {
    return "has schema version " + std::to_string(version) + ", newer than this nixery's " +
           std::to_string(newest) +
           " (a newer release migrated it): run that release again, or restore a backup of "
           "the database made before it";
}

std::string sqlite_error(sqlite3* db) {
    return db != nullptr ? sqlite3_errmsg(db) : "out of memory";
}

// The migrations in `dir` (NNN_name.sql), in the order they apply.
Result<std::vector<std::pair<int, std::filesystem::path>>>
migration_files(const std::filesystem::path& dir) {
    std::vector<std::pair<int, std::filesystem::path>> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const auto name = entry.path().filename().string();
        if (entry.path().extension() != ".sql" || name.size() < 5 || !std::isdigit(name[0])) {
            continue;
        }
        files.emplace_back(std::stoi(name), entry.path());
    }
    if (ec) {
        return fail("read schema directory \"" + dir.string() + "\" failed: " + ec.message());
    }
    std::sort(files.begin(), files.end());
    return files;
}

} // namespace

Statement::Statement(Statement&& o) noexcept
    : m_stmt(o.m_stmt), m_db(o.m_db), m_in_use(o.m_in_use) {
    o.m_stmt = nullptr;
    o.m_in_use = nullptr;
}

Statement::~Statement() {
    if (m_stmt == nullptr) {
        return;
    }
    if (m_in_use != nullptr) {
        // Ends its read or write, as finalizing would, and forgets the
        // bindings, for the next user.
        sqlite3_reset(m_stmt);
        sqlite3_clear_bindings(m_stmt);
        *m_in_use = false;
    } else {
        sqlite3_finalize(m_stmt);
    }
}

Statement& Statement::bind(int index, std::string_view text) {
    sqlite3_bind_text(m_stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
    sqlite3_bind_int64(m_stmt, index, value);
    return *this;
}

Statement& Statement::bind(int index, double value) {
    sqlite3_bind_double(m_stmt, index, value);
    return *this;
}

Statement& Statement::bind_null(int index) {
    sqlite3_bind_null(m_stmt, index);
    return *this;
}

Result<bool> Statement::step() {
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    return fail(std::string("sqlite \"") + sqlite3_sql(m_stmt) +
                "\" failed: " + sqlite_error(m_db));
}

Result<void> Statement::run() {
    for (;;) {
        TRY_ASSIGN(const bool row, step());
        if (!row) {
            return {};
        }
    }
}

std::string Statement::text(int column) const {
    const auto* p = sqlite3_column_text(m_stmt, column);
    const int n = sqlite3_column_bytes(m_stmt, column);
    return p == nullptr
               ? std::string()
               : std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

Result<std::vector<std::string>> Statement::texts(int column) {
    std::vector<std::string> out;
    for (;;) {
        TRY_ASSIGN(const bool row, step());
        if (!row) {
            return out;
        }
        out.push_back(text(column));
    }
}

std::int64_t Statement::integer(int column) const {
    return sqlite3_column_int64(m_stmt, column);
}

double Statement::real(int column) const {
    return sqlite3_column_double(m_stmt, column);
}

bool Statement::is_null(int column) const {
    return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

Db::Db(Db&& o) noexcept : m_db(o.m_db), m_statements(std::move(o.m_statements)) {
    o.m_db = nullptr;
    o.m_statements.clear();
}

Db& Db::operator=(Db&& o) noexcept {
    std::swap(m_db, o.m_db);
    std::swap(m_statements, o.m_statements);
    return *this;
}

Db::~Db() {
    close();
}

void Db::close() {
    for (auto& [sql, cached] : m_statements) {
        sqlite3_finalize(cached->stmt);
    }
    m_statements.clear();
    if (m_db != nullptr) {
        sqlite3_close_v2(m_db);
        m_db = nullptr;
    }
}

Result<Db> Db::open(const std::filesystem::path& file, const std::filesystem::path& migrations) {
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(file.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    Db db(raw);
    // A database that exists but cannot be used must stop start-up with
    // what to do, never be replaced: an empty one would make nixery gc
    // remove every blob it no longer knows.
    const auto unusable = [&](const std::string& cause) {
        // Out of descriptors, the process is in trouble, not the file.
        const int sys = raw == nullptr ? 0 : sqlite3_system_errno(raw);
        if (sys == EMFILE || sys == ENFILE) {
            return fail("open database \"" + file.string() + "\" failed: " + cause +
                        ": too many open files in " +
                        (sys == EMFILE ? "this process (LimitNOFILE)" : "the system") +
                        "; the database is not at fault");
        }
        return fail("open database \"" + file.string() + "\" failed: " + cause +
                    "; the blobs in storage are safe: restore the file from a backup (or fix its "
                    "owner and mode) and start again; do not delete it, since nixery would start "
                    "with an empty database and nixery gc would then remove every stored blob");
    };
    if (rc != SQLITE_OK) {
        return unusable(sqlite_error(raw));
    }
    // The database is ours alone, whatever the umask: nginx's user shares
    // our group to reach the blobs. Tightened before WAL mode, since SQLite
    // gives the -wal and -shm files the database's mode, and before the
    // schema is written. By path: opening and closing the file here would
    // drop every POSIX lock this process holds on it, those of the other
    // threads' connections included (sqlite.org/howtocorrupt.html, 2.2).
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0 && st.st_uid == ::geteuid()) {
        ::chmod(file.c_str(), st.st_mode & 0700);
    }
    sqlite3_busy_timeout(raw, k_busy_timeout_ms);
    if (auto wal = db.exec("PRAGMA journal_mode = WAL"); !wal) {
        const auto code = sqlite3_errcode(raw);
        if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT || code == SQLITE_CANTOPEN ||
            code == SQLITE_PERM || code == SQLITE_READONLY || code == SQLITE_IOERR) {
            return unusable(sqlite_error(raw));
        }
        return unexpected(std::move(wal).error());
    }
    TRY(db.exec("PRAGMA synchronous = NORMAL"));
    TRY(db.exec("PRAGMA foreign_keys = ON"));
    TRY(db.migrate(migrations));
    return db;
}

Result<Db> Db::open_read_only(const std::filesystem::path& file,
                              const std::filesystem::path& migrations) {
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    Db db(raw);
    if (rc != SQLITE_OK) {
        return fail("open database \"" + file.string() + "\" to read failed: " + sqlite_error(raw));
    }
    sqlite3_busy_timeout(raw, k_busy_timeout_ms);
    TRY_ASSIGN(const auto files, migration_files(migrations));
    const int newest = files.empty() ? 0 : files.back().first;
    const int version = db.schema_version();
    if (version > newest) {
        return fail("database \"" + file.string() + "\": " + newer_schema(version, newest));
    }
    if (version < newest) {
        return fail("database \"" + file.string() + "\" has schema version " +
                    std::to_string(version) + ", this nixery needs " + std::to_string(newest) +
                    ": start nixery serve once to migrate it");
    }
    return db;
}

Result<Statement> Db::prepare(std::string_view sql) {
    std::string key(sql);
    const auto found = m_statements.find(key);
    const bool reuse = found != m_statements.end() && !found->second->in_use;
    if (reuse) {
        found->second->in_use = true;
        return Statement(found->second->stmt, m_db, &found->second->in_use);
    }
    const bool cache = found == m_statements.end();
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(m_db, sql.data(), static_cast<int>(sql.size()),
                           cache ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr) != SQLITE_OK) {
        return fail("sqlite prepare \"" + key + "\" failed: " + sqlite_error(m_db));
    }
    if (!cache) {
        return Statement(stmt, m_db, nullptr);
    }
    auto& cached = m_statements[std::move(key)];
    cached = std::make_unique<CachedStatement>(CachedStatement{stmt, true});
    return Statement(stmt, m_db, &cached->in_use);
}

Result<void> Db::exec(std::string_view sql) {
    char* err = nullptr;
    const std::string s(sql);
    if (sqlite3_exec(m_db, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err != nullptr ? err : sqlite_error(m_db);
        sqlite3_free(err);
        return fail("sqlite \"" + s.substr(0, 60) + "\" failed: " + msg);
    }
    return {};
}

int Db::schema_version() {
    auto stmt = prepare("PRAGMA user_version");
    if (!stmt || !stmt->step().value_or(false)) {
        return -1;
    }
    return static_cast<int>(stmt->integer(0));
}

Result<void> Db::migrate(const std::filesystem::path& dir) {
    TRY_ASSIGN(const auto files, migration_files(dir));
    // Several processes may start at once: check and apply under one write lock.
    TRY_ASSIGN(auto tx, Transaction::begin(*this));
    const int current = schema_version();
    const int newest = files.empty() ? 0 : files.back().first;
    if (current > newest) {
        return fail("the database " + newer_schema(current, newest));
    }
    for (const auto& [version, path] : files) {
        if (version <= current) {
            continue;
        }
        TRY_ASSIGN(const auto sql, read_file(path));
        TRY(exec(sql));
        TRY(exec("PRAGMA user_version = " + std::to_string(version)));
    }
    return tx.commit();
}

Result<Transaction> Transaction::begin(Db& db) {
    TRY(db.exec("BEGIN IMMEDIATE"));
    return Transaction(&db);
}

Transaction::~Transaction() {
    if (m_db != nullptr) {
        (void)m_db->exec("ROLLBACK");
    }
}

Result<void> Transaction::commit() {
    auto r = m_db->exec("COMMIT");
    if (r) {
        m_db = nullptr;
    }
    return r;
}

} // namespace nixery
