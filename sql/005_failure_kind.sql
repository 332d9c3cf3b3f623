-- Failures are remembered as the builder says them (core/failure.hpp: a kind,
-- what failed, the client's message and detail), not as HTTP: the registry
-- maps them when it answers, the same way as a failure it sees itself. The
-- rows live for seconds, so the old ones are dropped, not converted.
DROP TABLE failures;
CREATE TABLE failures (
    image_key    TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    what         TEXT NOT NULL,
    message      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    retry_after  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
