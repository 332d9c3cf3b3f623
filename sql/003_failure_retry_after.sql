-- A remembered failure keeps its Retry-After (a source still being fetched
-- says when to come back), which waiters of the failed build job read.
ALTER TABLE failures ADD COLUMN retry_after INTEGER NOT NULL DEFAULT 0;
