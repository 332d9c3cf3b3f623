-- Build-cache metadata. Applied once, in order with the other files of this
-- directory, at start-up; PRAGMA user_version records the last one applied.
-- Times are Unix seconds.

-- Every blob in storage, by digest: layers, configs and manifests.
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,      -- "sha256:<hex>"
    size        INTEGER NOT NULL,
    media_type  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- A packed layer, keyed by its content (a hash of its sorted store paths),
-- so a layer shared by several images is packed once.
CREATE TABLE layers (
    layer_key   TEXT PRIMARY KEY,
    digest      TEXT NOT NULL,
    diff_id     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- A built image, keyed by everything that determines its bytes: the output
-- store paths, the architecture, the popularity data and the layer budget.
CREATE TABLE images (
    closure_key      TEXT PRIMARY KEY,
    config_digest    TEXT NOT NULL,
    docker_manifest  TEXT NOT NULL,
    docker_digest    TEXT NOT NULL,
    oci_manifest     TEXT NOT NULL,
    oci_digest       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- The blobs an image references (layers, config, its manifests), for gc.
CREATE TABLE image_blobs (
    closure_key  TEXT NOT NULL REFERENCES images(closure_key) ON DELETE CASCADE,
    digest       TEXT NOT NULL,
    PRIMARY KEY (closure_key, digest)
) WITHOUT ROWID;
CREATE INDEX image_blobs_by_digest ON image_blobs(digest);

-- What an evaluation of (source revision, architecture, packages) gave.
-- For a source that can change (a path, a branch) it is trusted for
-- NIXERY_SOURCE_TTL seconds after evaluated_at.
CREATE TABLE evaluations (
    image_key     TEXT PRIMARY KEY,
    closure_key   TEXT NOT NULL,
    evaluated_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Tags pulled per repository name, for /v2/<name>/tags/list.
CREATE TABLE tags (
    name            TEXT NOT NULL,
    tag             TEXT NOT NULL,
    last_pulled_at  INTEGER NOT NULL,
    PRIMARY KEY (name, tag)
) WITHOUT ROWID;

-- Every build: each time Nix was run for a manifest request.
CREATE TABLE builds (
    id             INTEGER PRIMARY KEY,
    image          TEXT NOT NULL,
    tag            TEXT NOT NULL,
    image_key      TEXT NOT NULL,
    started_at     REAL NOT NULL,
    duration       REAL,                 -- NULL while running
    layers_built   INTEGER NOT NULL DEFAULT 0,
    layers_reused  INTEGER NOT NULL DEFAULT 0,
    status         INTEGER,              -- HTTP status of the outcome
    error          TEXT,                 -- the message when it failed
    pid            INTEGER NOT NULL
);
CREATE INDEX builds_by_image ON builds(image, tag);

-- Failures remembered briefly, so a client's retry does not rebuild.
CREATE TABLE failures (
    image_key   TEXT PRIMARY KEY,
    status      INTEGER NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
