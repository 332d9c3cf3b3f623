-- The store paths of each image's closure, for `nixery gc` with
-- NIXERY_NIX_GC: when the last image that needs a store path is forgotten,
-- the path becomes a candidate for deletion from the Nix store (a trigger
-- notes it; gc deletes it with nix-store --delete, which refuses live paths,
-- unless an image needs it again by then).
CREATE TABLE image_store_paths (
    closure_key  TEXT NOT NULL REFERENCES images(closure_key) ON DELETE CASCADE,
    store_path   TEXT NOT NULL,
    PRIMARY KEY (closure_key, store_path)
) WITHOUT ROWID;
CREATE INDEX image_store_paths_by_path ON image_store_paths(store_path);

CREATE TABLE nix_gc_candidates (
    store_path  TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TRIGGER image_store_path_released AFTER DELETE ON image_store_paths
WHEN NOT EXISTS (SELECT 1 FROM image_store_paths WHERE store_path = OLD.store_path)
BEGIN
    INSERT OR IGNORE INTO nix_gc_candidates (store_path) VALUES (OLD.store_path);
END;
