-- Uses of images for garbage collection (src/builder/usage.hpp): a manifest
-- served by digest counts as a use of the image it belongs to, found through
-- these indexes; and every instance sharing the storage writes a marker
-- cache/used/<manifest hex> when it uses an image, at most once a day per
-- manifest, remembering here when it last did.
CREATE INDEX images_by_docker_digest ON images(docker_digest);
CREATE INDEX images_by_oci_digest ON images(oci_digest);

CREATE TABLE shared_uses (
    digest      TEXT PRIMARY KEY,  -- "sha256:<hex>" of a manifest
    written_at  INTEGER NOT NULL   -- when this instance last wrote its marker
) WITHOUT ROWID;
