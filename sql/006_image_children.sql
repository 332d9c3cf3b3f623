-- The manifests an image index (or Docker manifest list) lists, one per
-- platform (NIXERY_PLATFORMS): gc keeps an index while an image with one of
-- these manifests is kept, and a pull of the index by digest is a use of
-- each of them (src/builder/usage.hpp), so a kept index keeps its children.
CREATE TABLE image_children (
    index_digest     TEXT NOT NULL,  -- "sha256:<hex>" of the index
    manifest_digest  TEXT NOT NULL,  -- "sha256:<hex>" of a manifest it lists
    PRIMARY KEY (index_digest, manifest_digest)
) WITHOUT ROWID;
CREATE INDEX image_children_by_manifest ON image_children(manifest_digest);
